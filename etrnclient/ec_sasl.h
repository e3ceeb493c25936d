/* SPDX-License-Identifier: ISC (see LICENSE) */
/*
 * ec_sasl.h - the SASL client side of AUTH (RFC 4954) for ODMR, with Cyrus
 * libsasl2.  Only ec_sasl.c includes <sasl/sasl.h>.  The library picks the
 * strongest mechanism both sides have; PLAIN and LOGIN are allowed only
 * under TLS.
 */
#ifndef ETRNCLIENT_EC_SASL_H
#define ETRNCLIENT_EC_SASL_H

#include <stddef.h>

struct ec_sasl;

enum ec_sasl_result { EC_SASL_OK, EC_SASL_CONTINUE, EC_SASL_FAIL };

int	ec_sasl_init(char *err, size_t errlen);
/* ec_sasl_start - choose a mechanism from the server's list (blank
 * separated); *mech and the base64 initial response (possibly "=" for an
 * empty one, or "" for none) go into the AUTH command */
enum ec_sasl_result ec_sasl_start(struct ec_sasl **, const char *host, const char *user,
	    const char *password, int tls, const char *mechs, const char **mech,
	    char *out, size_t outlen, char *err, size_t errlen);
/* ec_sasl_step - the base64 answer to a base64 challenge */
enum ec_sasl_result ec_sasl_step(struct ec_sasl *, const char *challenge, char *out,
	    size_t outlen, char *err, size_t errlen);
void	ec_sasl_free(struct ec_sasl *);

#endif
