/* Ladder diagrams: the seed's two-column picture, drawn live from trace events. */
#ifndef USTACK_TOOLS_LADDER_H
#define USTACK_TOOLS_LADDER_H

#include <stdbool.h>
#include <stdio.h>
#include <ustack/stack.h>

struct ladder {
	FILE *out;
	struct ustack *side[2];
	const char *label[2];
	int width;
	int sub[2];
};

/* Draws both stacks' events (in one process, e.g. `ustack demo`): subscribes to their traces. */
void ladder_init(struct ladder *l, FILE *out, struct ustack *left, const char *left_label,
		 struct ustack *right, const char *right_label);
/* A ladder drawn from events fed by hand (`ustack trace --ladder`): no subscriptions. */
void ladder_open(struct ladder *l, FILE *out, const char *left_label, const char *right_label);
/* An arrow for a frame that side sent, from its one-line summary (ustack_frame_format's). */
void ladder_frame(struct ladder *l, int side, uint64_t time_us, const char *summary);
/* Tracepoints that measure rather than act (tcp_probe, tcp_rcv_space_adjust): not drawn. */
bool ladder_is_measurement(const char *name);
void ladder_header(struct ladder *l);
/* A line for something that happened on one side (a drop on the wire, a note). */
void ladder_note(struct ladder *l, int side, uint64_t time_us, const char *text);
void ladder_detach(struct ladder *l);

#endif
