/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * conf.h - the configuration file tokenizer shared by spoold and etrnclient.
 *
 * Syntax: one directive a line, words separated by blanks, "#" starts a
 * comment, "double quotes" group words (with \" and \\), and a directive
 * ending in "{" opens a block closed by a line holding "}".  Each program
 * gives keyword tables; every error is collected as "file:line: message".
 * A directive not marked repeat may appear once per block: a second one is
 * an error, never a silent override.
 */
#ifndef SHARED_CONF_H
#define SHARED_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_ARGS	64

struct conf_ctx;

/* A handler gets the directive's arguments (argv[0] is the keyword) and the
 * object of the enclosing block; it reports errors with conf_error(). */
typedef void conf_handler(struct conf_ctx *, void *target, int argc, char **argv);
/* A block opener returns the object the block's directives fill, or NULL
 * (after reporting the error) to skip the block, or CONF_SKIP for a block
 * the program does not want this time: skipped to its "}" unread (its lines
 * are not checked), as spoolctl skips the domains it was not asked about. */
typedef void *conf_block_open(struct conf_ctx *, void *target, int argc, char **argv);
extern char conf_skip_marker;
#define CONF_SKIP	((void *)&conf_skip_marker)

struct conf_keyword {
	const char			*name;
	int				 min_args;	/* not counting the keyword */
	int				 max_args;	/* -1: unlimited */
	conf_handler			*handler;
	conf_block_open			*open_block;	/* set for "name ... {" */
	const struct conf_keyword	*block;		/* keywords inside */
	conf_handler			*close_block;	/* optional, at "}" */
	int				 repeat;	/* may be given more than once */
};

struct conf_errors {
	char	**msgs;
	size_t	  count;
};

/* conf_parse_file - parse path with the top-level table into target.
 * Returns the number of errors added to errs (0: success). */
int	conf_parse_file(const char *path, const struct conf_keyword *top,
	    void *target, struct conf_errors *errs);
/* conf_parse_string - the same for text in memory, named name in errors */
int	conf_parse_string(const char *name, const char *text,
	    const struct conf_keyword *top, void *target, struct conf_errors *errs);
void	conf_errors_free(struct conf_errors *);

void	conf_error(struct conf_ctx *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void	conf_warning(struct conf_ctx *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int	conf_line(const struct conf_ctx *);

/* Value parsers: 0 ok, -1 bad (nothing reported; the caller says why). */
int	conf_parse_size(const char *, uint64_t *);	/* 512, 10K, 50M, 2G, 1T */
int	conf_parse_duration(const char *, uint64_t *);	/* 30, 30s, 5m, 2h, 30d */
int	conf_parse_uint(const char *, uint64_t max, uint64_t *);

/* Helpers for the programs' keyword handlers.  Out of memory while loading
 * a configuration aborts: there is nothing sensible to go on with. */
char	*conf_xstrdup(const char *);
void	*conf_xgrow(void *, size_t n, size_t size);
/* conf_add_error - an error found after parsing ("file: message") */
void	conf_add_error(struct conf_errors *, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* conf_relative_path - a relative *path is taken from conf_path's directory */
void	conf_relative_path(char **path, const char *conf_path);

/* Warnings are printed by the parse functions' caller through this hook
 * (stderr for -n, the log otherwise); NULL discards them. */
extern void (*conf_warning_hook)(const char *msg);

#endif
