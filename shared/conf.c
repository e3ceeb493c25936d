/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * conf.c - configuration tokenizer and value parsers.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define CONF_MAX_DEPTH	4
#define CONF_MAX_FILE	(16 * 1024 * 1024)

void (*conf_warning_hook)(const char *msg);
char conf_skip_marker;

#define CONF_MAX_KEYWORDS	64	/* per table, for the seen[] record */

struct conf_frame {
	const struct conf_keyword	*table;
	const struct conf_keyword	*opener;	/* keyword that opened it */
	void				*target;
	int				 unread;	/* the opener said CONF_SKIP */
	int				 line;
	int				 seen[CONF_MAX_KEYWORDS];	/* line of first use */
};

struct conf_ctx {
	const char		*file;
	int			 line;
	struct conf_errors	*errs;
	struct conf_frame	 stack[CONF_MAX_DEPTH];
	int			 depth;
};


int
conf_line(const struct conf_ctx *c)
{
	return c->line;
}

static void
conf_take_error(struct conf_errors *errs, char *msg)
{
	char **n = realloc(errs->msgs, (errs->count + 1) * sizeof(*n));

	if (n == NULL || msg == NULL) {
		free(msg);
		return;
	}
	errs->msgs = n;
	errs->msgs[errs->count++] = msg;
}

void
conf_error(struct conf_ctx *c, const char *fmt, ...)
{
	char text[512], *msg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (asprintf(&msg, "%s:%d: %s", c->file, c->line, text) == -1)
		msg = NULL;
	conf_take_error(c->errs, msg);
}

void
conf_warning(struct conf_ctx *c, const char *fmt, ...)
{
	char text[512], msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s:%d: warning: %s", c->file, c->line, text);
	if (conf_warning_hook)
		conf_warning_hook(msg);
}

void
conf_errors_free(struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->count; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->count = 0;
}

/* conf_tokenize - split line in place into argv; returns argc or -1 */
static int
conf_tokenize(struct conf_ctx *c, char *line, char **argv)
{
	int argc = 0;
	char *p = line, *o;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r')
			p++;
		if (*p == '\0' || *p == '#')
			return argc;
		if (argc == CONF_MAX_ARGS) {
			conf_error(c, "too many words on one line (at most %d)", CONF_MAX_ARGS);
			return -1;
		}
		argv[argc++] = o = p;
		if (*p == '"') {
			for (p++; *p != '"'; p++) {
				if (*p == '\0') {
					conf_error(c, "unterminated quoted string");
					return -1;
				}
				if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
					p++;
				*o++ = *p;
			}
			p++;
			if (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r') {
				conf_error(c, "a quoted string must be followed by a blank");
				return -1;
			}
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r' && *p != '#')
				*o++ = *p++;
		}
		if (*p == '#') {
			*o = '\0';
			return argc;
		}
		if (*p != '\0')
			p++;
		*o = '\0';
	}
}

static const struct conf_keyword *
conf_lookup(const struct conf_keyword *table, const char *name)
{
	/* the first letter first: "domain" is the last of spoold's 37 */
	for (; table->name != NULL; table++)
		if (table->name[0] == name[0] && strcmp(table->name, name) == 0)
			return table;
	return NULL;
}

/* conf_close_block - handle a "}" line */
static void
conf_close_block(struct conf_ctx *c, int argc)
{
	struct conf_frame *f;

	if (argc != 1) {
		conf_error(c, "\"}\" must be alone on its line");
		return;
	}
	if (c->depth == 0) {
		conf_error(c, "\"}\" without an open block");
		return;
	}
	f = &c->stack[c->depth--];
	if (f->opener && f->opener->close_block && f->target)
		f->opener->close_block(c, f->target, 0, NULL);
}

/* conf_open_block - "keyword args {": push the block's frame */
static void
conf_open_block(struct conf_ctx *c, const struct conf_keyword *kw, void *target,
    int argc, char **argv)
{
	struct conf_frame *f;

	if (c->depth + 1 >= CONF_MAX_DEPTH) {
		conf_error(c, "blocks nested too deeply");
		return;
	}
	f = &c->stack[++c->depth];
	memset(f, 0, sizeof(*f));
	f->table = kw->block;
	f->opener = kw->open_block ? kw : NULL;
	f->line = c->line;
	/* A block that could not be opened is skipped to its "}". */
	f->target = kw->open_block ? kw->open_block(c, target, argc, argv) : NULL;
	if (f->target == CONF_SKIP) {
		f->target = NULL;
		f->unread = 1;
	}
}

/* conf_unread_line - line is inside a CONF_SKIP block and can neither open
 * nor close one: not even tokenized (100,000 domain blocks cost spoolctl
 * 0.15 s that way) */
static int
conf_unread_line(const struct conf_ctx *c, const char *line)
{
	return c->stack[c->depth].unread && strpbrk(line, "{}\"") == NULL;
}

/* conf_seen_before - report a second use of a once-only directive */
static int
conf_seen_before(struct conf_ctx *c, struct conf_frame *f, const struct conf_keyword *kw)
{
	size_t i = (size_t)(kw - f->table);

	if (kw->repeat || i >= CONF_MAX_KEYWORDS)
		return 0;
	if (f->seen[i] == 0) {
		f->seen[i] = c->line;
		return 0;
	}
	conf_error(c, "\"%s\" given twice (first at line %d)", kw->name, f->seen[i]);
	return 1;
}

/* conf_directive - dispatch one tokenized line */
static void
conf_directive(struct conf_ctx *c, int argc, char **argv)
{
	struct conf_frame *f = &c->stack[c->depth];
	const struct conf_keyword *kw;
	int opens = strcmp(argv[argc - 1], "{") == 0;
	int nargs;

	if (strcmp(argv[0], "}") == 0) {
		conf_close_block(c, argc);
		return;
	}
	for (int i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], "{") == 0) {
			conf_error(c, "\"{\" must end its line: a block's directives go on the "
			    "lines after it, one a line, and \"}\" alone on the last");
			if (strcmp(argv[argc - 1], "}") != 0)	/* skip the rest of the block */
				conf_open_block(c, &(struct conf_keyword){ .block = f->table }, NULL, 0, NULL);
			return;
		}
	if (opens)
		argc--;
	if (f->target == NULL && c->depth > 0)
		return;		/* inside a block whose opening failed */
	if ((kw = conf_lookup(f->table, argv[0])) == NULL) {
		conf_error(c, "unknown directive \"%.64s\"%s", argv[0],
		    c->depth > 0 ? " in this block" : "");
		if (opens)
			conf_open_block(c, &(struct conf_keyword){ .block = f->table }, NULL, 0, NULL);
		return;
	}
	nargs = argc - 1;
	if (conf_seen_before(c, f, kw)) {
		if (opens)	/* skip its block */
			conf_open_block(c, &(struct conf_keyword){ .block = f->table }, NULL, 0, NULL);
		return;
	}
	if (kw->open_block && !opens) {
		conf_error(c, "\"%s\" needs a block: %s ... {", kw->name, kw->name);
		return;
	}
	if (!kw->open_block && opens) {
		conf_error(c, "\"%s\" does not take a block", kw->name);
		/* skip to its "}" so that line is not a second error */
		conf_open_block(c, &(struct conf_keyword){ .block = f->table }, NULL, 0, NULL);
		return;
	}
	if (nargs < kw->min_args || (kw->max_args >= 0 && nargs > kw->max_args)) {
		if (kw->min_args == kw->max_args)
			conf_error(c, "\"%s\" takes %d argument%s", kw->name, kw->min_args,
			    kw->min_args == 1 ? "" : "s");
		else
			conf_error(c, "\"%s\" takes %s %d arguments", kw->name,
			    nargs < kw->min_args ? "at least" : "at most",
			    nargs < kw->min_args ? kw->min_args : kw->max_args);
		if (kw->open_block)
			conf_open_block(c, &(struct conf_keyword){ .block = kw->block }, NULL, 0, NULL);
		return;
	}
	if (kw->open_block)
		conf_open_block(c, kw, f->target, argc, argv);
	else
		kw->handler(c, f->target, argc, argv);
}

/* conf_parse_text - conf_parse_string on text it may write to (the
 * tokenizer splits lines in place) */
static int
conf_parse_text(const char *name, char *text, const struct conf_keyword *top, void *target,
    struct conf_errors *errs)
{
	struct conf_ctx c = { .file = name, .errs = errs };
	size_t before = errs->count;
	char *line, *next, *argv[CONF_MAX_ARGS];
	int argc;

	c.stack[0].table = top;
	c.stack[0].target = target;
	for (line = text; line != NULL; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		c.line++;
		if (conf_unread_line(&c, line))
			continue;
		if ((argc = conf_tokenize(&c, line, argv)) <= 0)
			continue;
		conf_directive(&c, argc, argv);
	}
	if (c.depth > 0) {
		c.line = c.stack[c.depth].line;
		conf_error(&c, "block opened here is not closed with \"}\"");
	}
	return (int)(errs->count - before);
}

int
conf_parse_string(const char *name, const char *text,
    const struct conf_keyword *top, void *target, struct conf_errors *errs)
{
	char *copy = strdup(text);
	int rc;

	if (copy == NULL) {
		conf_take_error(errs, strdup("out of memory"));
		return 1;
	}
	rc = conf_parse_text(name, copy, top, target, errs);
	free(copy);
	return rc;
}

int
conf_parse_file(const char *path, const struct conf_keyword *top, void *target,
    struct conf_errors *errs)
{
	FILE *fp = fopen(path, "r");
	char *text, *msg;
	size_t len;
	int rc;

	if (fp == NULL) {
		if (asprintf(&msg, "%s: %s", path, strerror(errno)) == -1)
			msg = NULL;
		conf_take_error(errs, msg);
		return 1;
	}
	text = malloc(CONF_MAX_FILE + 1);
	len = text ? fread(text, 1, CONF_MAX_FILE, fp) : 0;
	if (text == NULL || ferror(fp) || !feof(fp)) {
		if (asprintf(&msg, "%s: cannot read (or larger than %d bytes)", path, CONF_MAX_FILE) == -1)
			msg = NULL;
		conf_take_error(errs, msg);
		fclose(fp);
		free(text);
		return 1;
	}
	fclose(fp);
	text[len] = '\0';
	if (memchr(text, '\0', len) != NULL) {
		if (asprintf(&msg, "%s: contains a NUL byte", path) == -1)
			msg = NULL;
		conf_take_error(errs, msg);
		free(text);
		return 1;
	}
	rc = conf_parse_text(path, text, top, target, errs);	/* no second copy of 16M */
	free(text);
	return rc;
}

/* conf_number_suffix - digits then at most one suffix letter from units */
static int
conf_number_suffix(const char *s, const char *units, const uint64_t *mult, uint64_t *out)
{
	uint64_t n = 0, m = 1;
	const char *p = s, *u;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (*p != '\0') {
		if (p[1] != '\0' || (u = strchr(units, tolower((unsigned char)*p))) == NULL)
			return -1;
		m = mult[u - units];
	}
	if (m > 1 && n > UINT64_MAX / m)
		return -1;
	*out = n * m;
	return 0;
}

int
conf_parse_size(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 1024, 1024 * 1024, 1024 * 1024 * 1024,
	    1024ULL * 1024 * 1024 * 1024 };

	return conf_number_suffix(s, "bkmgt", mult, out);
}

int
conf_parse_duration(const char *s, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400, 7 * 86400 };

	return conf_number_suffix(s, "smhdw", mult, out);
}

int
conf_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	static const uint64_t one[] = { 1 };

	if (conf_number_suffix(s, "", one, out) == -1 || *out > max)
		return -1;
	return 0;
}

char *
conf_xstrdup(const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		abort();
	return d;
}

void *
conf_xgrow(void *p, size_t n, size_t size)
{
	void *q = realloc(p, n * size);

	if (q == NULL)
		abort();
	return q;
}

void
conf_add_error(struct conf_errors *errs, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int rc;

	va_start(ap, fmt);
	rc = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (rc == -1)
		return;
	errs->msgs = conf_xgrow(errs->msgs, errs->count + 1, sizeof(char *));
	errs->msgs[errs->count++] = msg;
}

void
conf_relative_path(char **path, const char *conf_path)
{
	const char *slash = strrchr(conf_path, '/');
	char *joined;

	if ((*path)[0] == '/' || slash == NULL)
		return;
	if (asprintf(&joined, "%.*s/%s", (int)(slash - conf_path), conf_path, *path) == -1)
		abort();
	free(*path);
	*path = joined;
}
