#include "ladder.h"

#include <stdbool.h>
#include <string.h>
#include <ustack/socket.h>
#include <ustack/trace.h>

#define COL 44 /* width of each side's step column */

/* How much of text fits in max columns: all of it, or up to its last space (dropped) or
 * comma (kept) that fits, or max bytes if there is none. */
static int wrap_at(const char *text, int max)
{
	int len = (int)strlen(text);
	if (len <= max)
		return len;
	for (int i = max; i > max / 2; i--)
		if (text[i] == ' ' || text[i - 1] == ',')
			return i;
	return max;
}

/* Linux's tracepoints that measure rather than act — tcp_probe on every segment an
 * ESTABLISHED socket receives, tcp_rcv_space_adjust on every read — would bury the steps. */
bool ladder_is_measurement(const char *name)
{
	return name && (!strcmp(name, "tcp_probe") || !strcmp(name, "tcp_rcv_space_adjust"));
}

/* An arrow for a frame side sent, from its one-line summary (ustack_frame_format's). */
void ladder_frame(struct ladder *l, int side, uint64_t time_us, const char *full)
{
	char text[256];
	/* The addresses are the columns already; keep the protocol part, drop IP details. */
	const char *p = full;
	if (!strncmp(p, "IP ", 3) && strstr(p, ": "))
		p = strstr(p, ": ") + 2;
	snprintf(text, sizeof(text), "%s", p);
	char *ttl = strstr(text, " (ttl ");
	if (ttl && strstr(full, "Flags"))
		*ttl = 0;
	/* compact: "Flags [S.]" → "[S.]", ", options [...]" → " <...>" */
	char tmp[256];
	size_t o = 0;
	for (const char *q = text; *q && o + 1 < sizeof(tmp);) {
		if (!strncmp(q, "Flags [", 7)) {
			tmp[o++] = '[';
			q += 7;
		} else if (!strncmp(q, ", options [", 11)) {
			tmp[o++] = ' ';
			tmp[o++] = '<';
			q += 11;
			while (*q && *q != ']' && o + 4 < sizeof(tmp)) {
				/* Fast Open: "tfo cookiereq" → "FO" (a cookie request),
				 * "tfo cookie 1a2b..." → "FO 1a2b..." */
				if (!strncmp(q, "tfo cookiereq", 13)) {
					q += 13;
					tmp[o++] = 'F';
					tmp[o++] = 'O';
					continue;
				}
				if (!strncmp(q, "tfo cookie ", 11)) {
					q += 11;
					tmp[o++] = 'F';
					tmp[o++] = 'O';
					tmp[o++] = ' ';
					continue;
				}
				tmp[o++] = *q++;
			}
			tmp[o++] = '>';
			if (*q)
				q++;
		} else {
			tmp[o++] = *q++;
		}
	}
	tmp[o] = 0;
	memcpy(text, tmp, o + 1);
	char *len0 = strstr(text, ", length 0");
	if (len0 && !len0[10])
		*len0 = 0;
	int w = l->width;
	/* A frame too long for the arrow (a SYN with a Fast Open cookie, many SACK blocks)
	 * goes on under it, broken at spaces: nothing is cut off, its length included. */
	const char *rest = text;
	int tl = wrap_at(rest, w - 6);
	int pad = w - tl - 4;
	fprintf(l->out, "%9.3f ms  ", (double)time_us / 1000.0);
	if (side == 0) {
		fprintf(l->out, "│ %.*s ", tl, rest);
		for (int i = 0; i < pad; i++)
			fputs("─", l->out);
		fputs("▶│\n", l->out);
	} else {
		fputs("│◀", l->out);
		for (int i = 0; i < pad; i++)
			fputs("─", l->out);
		fprintf(l->out, " %.*s │\n", tl, rest);
	}
	for (int lines = 0; rest[tl] && lines < 4; lines++) { /* bounded: text is < 256 bytes */
		rest += tl + (rest[tl] == ' ');
		tl = wrap_at(rest, w - 8);
		if (side == 0)
			fprintf(l->out, "%14s│   %-*.*s │\n", "", w - 5, tl, rest);
		else
			fprintf(l->out, "%14s│%*.*s │\n", "", w - 2, tl, rest);
	}
}

static void ladder_event(void *arg, const struct ustack_trace_event *ev)
{
	struct ladder *l = arg;
	int side = strcmp(ev->stack, ustack_name(l->side[0])) == 0 ? 0 : 1;
	char text[256];

	if (ev->kind == USTACK_TRACE_PKT_TX) {
		ustack_frame_format(text, sizeof(text), ev->link_type, ev->frame, ev->len);
		ladder_frame(l, side, ev->time_us, text);
	} else if (ev->kind == USTACK_TRACE_STEP && ladder_is_measurement(ev->name)) {
		/* not a step of the protocol: left to `ustack trace` */
	} else if (ev->kind == USTACK_TRACE_STEP && ev->old_state != ev->new_state) {
		snprintf(text, sizeof(text), "%s %s -> %s", ev->name, ustack_tcp_state_name(ev->old_state),
			 ustack_tcp_state_name(ev->new_state));
		ladder_note(l, side, ev->time_us, text);
	} else if (ev->kind == USTACK_TRACE_STEP) {
		/* the name alone: a step's detail is its tracepoint's fields (tcp_send_reset's
		 * addresses, tcp_retransmit_skb's state and err ...), which the arrows already show */
		ladder_note(l, side, ev->time_us, ev->name ? ev->name : "?");
	} else if (ev->kind == USTACK_TRACE_DROP) {
		snprintf(text, sizeof(text), "drop: %s%s", ev->name, ev->detail ? ev->detail : "");
		ladder_note(l, side, ev->time_us, text);
	}
}

void ladder_note(struct ladder *l, int side, uint64_t time_us, const char *text)
{
	if (side == 0)
		fprintf(l->out, "%9.3f ms  │ %-*s\n", (double)time_us / 1000.0, COL, text);
	else
		fprintf(l->out, "%9.3f ms  %*s%*s │\n", (double)time_us / 1000.0, l->width - COL + 2, "",
			COL, text);
}

void ladder_open(struct ladder *l, FILE *out, const char *left_label, const char *right_label)
{
	*l = (struct ladder){ .out = out, .label = { left_label, right_label }, .width = 126, .sub = { -1, -1 } };
}

void ladder_init(struct ladder *l, FILE *out, struct ustack *left, const char *left_label,
		 struct ustack *right, const char *right_label)
{
	ladder_open(l, out, left_label, right_label);
	l->side[0] = left;
	l->side[1] = right;
	l->sub[0] = ustack_trace_subscribe(left, ladder_event, l);
	l->sub[1] = ustack_trace_subscribe(right, ladder_event, l);
}

void ladder_header(struct ladder *l)
{
	fprintf(l->out, "%12s  %-*s%*s\n", "time", l->width / 2, l->label[0], l->width / 2 + 2, l->label[1]);
}

void ladder_detach(struct ladder *l)
{
	ustack_trace_unsubscribe(l->side[0], l->sub[0]);
	ustack_trace_unsubscribe(l->side[1], l->sub[1]);
}
