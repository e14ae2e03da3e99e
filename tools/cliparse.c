/* The command line's value parsers and messages (cliparse.h). */
#include "cliparse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *command = "";
static char optname[64]; /* the option as typed, for the handler's messages */

void cli_set_command(const char *cmd)
{
	command = cmd;
}

const char *cli_command(void)
{
	return command;
}

const char *cli_opt(void)
{
	return optname;
}

void cli_error(const char *opt, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "ustack %s: ", command);
	if (opt)
		fprintf(stderr, "%s: ", opt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* getopt_long takes any unique prefix of a long option, and answers '?' for one that is the
 * prefix of several (--d: --drop-syn or --drop-synack?) as for an unknown one. */
static int ambiguous(const struct option *longopts, const char *prefix)
{
	int n = 0;
	size_t len = strlen(prefix);
	for (const struct option *o = longopts; o && o->name; o++)
		n += !strncmp(o->name, prefix, len);
	return n > 1;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
	/* A leading ':' makes a missing value ':' rather than '?', so the two messages differ;
	 * opterr = 0 silences getopt's own, which would say "up:" (argv[0] is the subcommand). */
	char shorts[128];
	snprintf(shorts, sizeof(shorts), ":%s", shortopts);
	opterr = 0;
	int before = optind, longindex = -1;
	int c = getopt_long(argc, argv, shorts, longopts, &longindex);
	if (c == -1)
		return c;
	if (c != '?' && c != ':') {
		if (longindex >= 0)
			snprintf(optname, sizeof(optname), "--%s", longopts[longindex].name);
		else
			snprintf(optname, sizeof(optname), "-%c", c);
		return c;
	}
	/* Which option was wrong: a long one is always consumed whole, so optind has moved past
	 * it; a short one may sit inside a cluster such as -vc, so it is named by its letter. */
	const char *el = optind > before && optind <= argc ? argv[optind - 1] : NULL;
	int is_long = el && el[0] == '-' && el[1] == '-';
	if (is_long)
		snprintf(optname, sizeof(optname), "%.*s", (int)strcspn(el, "="), el);
	else if (optopt > 0 && optopt < 128 && isgraph(optopt))
		snprintf(optname, sizeof(optname), "-%c", optopt);
	else
		snprintf(optname, sizeof(optname), "%s", el ? el : "?");
	if (c == ':')
		cli_error(optname, "needs a value");
	else if (is_long && optopt) /* --help=x: a known option that takes no value */
		cli_error(optname, "takes no value");
	else if (is_long && ambiguous(longopts, optname + 2))
		cli_error(NULL, "ambiguous option '%s' (see ustack %s --help)", optname, command);
	else
		cli_error(NULL, "unknown option '%s' (see ustack %s --help)", optname, command);
	return '?';
}

int cli_no_operands(int argc, char **argv)
{
	if (optind >= argc)
		return 0;
	cli_error(NULL, "unexpected argument '%s' (see ustack %s --help)", argv[optind], command);
	return -1;
}

/* ---- numbers ------------------------------------------------------------------------ */

static int digit_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return 99;
}

/*
 * The number at the start of s: decimal digits, or hex ones after 0x.  Written out rather
 * than strtoull, which would take leading white space and a sign ("-5" wraps to a huge
 * number) and octal for a leading 0.  *end is the first character after; -1 if there are no
 * digits or the value does not fit.
 */
static int scan_u64(const char *s, const char **end, uint64_t *v)
{
	unsigned base = 10;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	const char *p = s;
	uint64_t x = 0;
	for (int d; (d = digit_value(*p)) < (int)base; p++) {
		if (x > (UINT64_MAX - (unsigned)d) / base)
			return -1;
		x = x * base + (unsigned)d;
	}
	if (p == s)
		return -1;
	*end = p;
	*v = x;
	return 0;
}

int cli_u64(const char *opt, const char *s, uint64_t min, uint64_t max, const char *what, uint64_t *out)
{
	const char *end;
	uint64_t v;
	if (scan_u64(s, &end, &v) == 0 && !*end && v >= min && v <= max) {
		*out = v;
		return 0;
	}
	if (min == 0 && max == UINT64_MAX)
		cli_error(opt, "'%s' is not %s (a whole number)", s, what);
	else
		cli_error(opt, "'%s' is not %s (%llu-%llu)", s, what, (unsigned long long)min,
			  (unsigned long long)max);
	return -1;
}

int cli_int(const char *opt, const char *s, int min, int max, const char *what, int *out)
{
	uint64_t v;
	if (cli_u64(opt, s, min < 0 ? 0 : (uint64_t)min, (uint64_t)max, what, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

int cli_port(const char *opt, const char *s, uint16_t *out)
{
	uint64_t v;
	if (cli_u64(opt, s, 1, 65535, "a port", &v) < 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int cli_size(const char *opt, const char *s, uint64_t max, const char *what, uint64_t *out)
{
	const char *end;
	uint64_t v;
	unsigned shift = 0;
	int ok = scan_u64(s, &end, &v) == 0;
	if (ok && *end) {
		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: ok = 0;
		}
		ok = ok && !end[1] && v <= UINT64_MAX >> shift;
	}
	if (ok && (v << shift) <= max) {
		*out = v << shift;
		return 0;
	}
	if (max == UINT64_MAX)
		cli_error(opt, "'%s' is not %s (a whole number, optionally with a k, M or G suffix)", s, what);
	else
		cli_error(opt, "'%s' is not %s (0-%llu bytes)", s, what, (unsigned long long)max);
	return -1;
}

int cli_real(const char *opt, const char *s, double min, double max, const char *what, double *out)
{
	/* Digits and at most one point: strtod alone would also take a sign, white space,
	 * exponents, "inf", "nan" and hex floats. */
	int digits = 0, points = 0;
	const char *p = s;
	for (; *p; p++) {
		if (*p >= '0' && *p <= '9')
			digits++;
		else if (*p == '.' && !points)
			points++;
		else
			break;
	}
	if (!*p && digits) {
		double v = strtod(s, NULL);
		if (v >= min && v <= max) {
			*out = v;
			return 0;
		}
	}
	cli_error(opt, "'%s' is not %s (%g-%g)", s, what, min, max);
	return -1;
}

/* ---- addresses ---------------------------------------------------------------------- */

int cli_ipv4(const char *opt, const char *s, struct in_addr *out)
{
	if (inet_pton(AF_INET, s, out) == 1)
		return 0;
	cli_error(opt, "'%s' is not an IPv4 address (A.B.C.D)", s);
	return -1;
}

static int is_unicast(struct in_addr a)
{
	uint32_t h = ntohl(a.s_addr);
	return h != 0 && (h >> 28) != 14 && h != 0xffffffffu;
}

int cli_unicast(const char *opt, const char *s, struct in_addr *out)
{
	if (cli_ipv4(opt, s, out) < 0)
		return -1;
	if (is_unicast(*out))
		return 0;
	cli_error(opt, "'%s' is not a unicast address (not 0.0.0.0, multicast or broadcast)", s);
	return -1;
}

int cli_prefix(const char *opt, const char *s, struct in_addr *a, unsigned *len)
{
	char buf[INET_ADDRSTRLEN];
	size_t n = strcspn(s, "/");
	unsigned l = 32;
	int ok = n < sizeof(buf);
	if (ok) {
		memcpy(buf, s, n);
		buf[n] = 0;
		ok = inet_pton(AF_INET, buf, a) == 1;
	}
	if (ok && s[n]) { /* "/N": one or two decimal digits, as ip(8) writes them */
		const char *d = s + n + 1;
		ok = isdigit((unsigned char)d[0]) && (!d[1] || (isdigit((unsigned char)d[1]) && !d[2]));
		l = ok ? (unsigned)atoi(d) : 0;
		ok = ok && l <= 32;
	}
	if (!ok) {
		cli_error(opt, "'%s' is not an address/prefix (A.B.C.D/N, N 0-32)", s);
		return -1;
	}
	if (!is_unicast(*a)) {
		cli_error(opt, "'%s' is not a unicast address (not 0.0.0.0, multicast or broadcast)", s);
		return -1;
	}
	*len = l;
	return 0;
}

int cli_mac(const char *opt, const char *s, uint8_t mac[6])
{
	const char *p = s;
	int ok = 1;
	for (int i = 0; i < 6 && ok; i++) {
		int hi = digit_value(p[0]), lo = digit_value(p[1]);
		if (hi > 15) {
			ok = 0;
			break;
		}
		mac[i] = (uint8_t)(lo <= 15 ? hi * 16 + lo : hi);
		p += lo <= 15 ? 2 : 1;
		ok = *p == (i < 5 ? ':' : '\0');
		p++;
	}
	if (!ok) {
		cli_error(opt, "'%s' is not a MAC address (xx:xx:xx:xx:xx:xx)", s);
		return -1;
	}
	/* A station's own address: frames from a group address are dropped by every receiver,
	 * and all zeros is no address at all. */
	if (mac[0] & 1) {
		cli_error(opt, "'%s' is not a unicast MAC address (the first octet's group bit is set)", s);
		return -1;
	}
	if (!(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
		cli_error(opt, "'%s' is not a unicast MAC address (all zeros)", s);
		return -1;
	}
	return 0;
}

int cli_ifname(const char *opt, const char *s)
{
	/* Linux's dev_valid_name(); checked here so that a bad name is a usage error, not an
	 * EINVAL from the TUNSETIFF ioctl after /dev/net/tun was opened. */
	int ok = *s && strlen(s) < IFNAMSIZ && strcmp(s, ".") && strcmp(s, "..");
	for (const char *p = s; ok && *p; p++)
		ok = *p != '/' && *p != ':' && !isspace((unsigned char)*p);
	if (ok)
		return 0;
	cli_error(opt, "'%s' is not an interface name (1-%d characters, no '/', ':' or spaces)", s,
		  IFNAMSIZ - 1);
	return -1;
}
