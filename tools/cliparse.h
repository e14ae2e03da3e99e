/*
 * One strict parser for the values on `ustack`'s command line: numbers, ports, sizes, real
 * numbers, IPv4 addresses and prefixes, MAC addresses and interface names.  Strict means the
 * whole string is the value: no sign, no white space, no trailing text ("80abc" is not port
 * 80), and in range.  Each parser prints one line on stderr naming the command and the option,
 *
 *   ustack up: --listen: '80abc' is not a port (1-65535)
 *
 * and returns -1, or returns 0 with the value stored.  Usage errors exit with status 2.
 */
#ifndef USTACK_TOOLS_CLIPARSE_H
#define USTACK_TOOLS_CLIPARSE_H

#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>

#define CLI_USAGE 2 /* exit status of a usage error (bad option or value) */

/* The subcommand every message names ("up", "nc", ...). */
void cli_set_command(const char *cmd);
const char *cli_command(void);

/* "ustack CMD: OPT: <message>" (no "OPT: " when opt is NULL), one line on stderr. */
void cli_error(const char *opt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * getopt_long with the messages above instead of getopt's own (which would name argv[0], the
 * subcommand, and not `ustack`): returns the option, -1 at the end, or '?' after printing
 * "unknown option" or "needs a value".  shortopts must not start with ':'.
 */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* The option cli_getopt last returned, as typed in its long or short form ("--count", "-c"). */
const char *cli_opt(void);
/* "unexpected argument" for operands a command does not take; -1 if any, else 0. */
int cli_no_operands(int argc, char **argv);

/*
 * Whole numbers: decimal, or hexadecimal with 0x; min..max.  `what` names the kind of value
 * for the message ("a port", "a count", ...).
 */
int cli_u64(const char *opt, const char *s, uint64_t min, uint64_t max, const char *what, uint64_t *out);
int cli_int(const char *opt, const char *s, int min, int max, const char *what, int *out);
int cli_port(const char *opt, const char *s, uint16_t *out);
/* A byte count with an optional k, M or G suffix (×1024, ×1024², ×1024³), 0..max. */
int cli_size(const char *opt, const char *s, uint64_t max, const char *what, uint64_t *out);
/* A real number without sign or exponent ("0.25", "50", ".5"), min..max. */
int cli_real(const char *opt, const char *s, double min, double max, const char *what, double *out);

/* A dotted-quad IPv4 address (inet_pton: exactly four decimal parts). */
int cli_ipv4(const char *opt, const char *s, struct in_addr *out);
/* An address a host can have: not 0.0.0.0, multicast or 255.255.255.255. */
int cli_unicast(const char *opt, const char *s, struct in_addr *out);
/* A/N: a unicast address and a prefix length 0..32 (without /N: 32). */
int cli_prefix(const char *opt, const char *s, struct in_addr *a, unsigned *len);
/* xx:xx:xx:xx:xx:xx, unicast (the group bit clear) and not all zeros. */
int cli_mac(const char *opt, const char *s, uint8_t mac[6]);
/* A Linux interface name: 1..15 bytes, not "." or "..", no '/', ':' or white space. */
int cli_ifname(const char *opt, const char *s);

#endif
