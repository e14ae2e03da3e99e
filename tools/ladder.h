/* Ladder diagrams: the seed's two-column picture, drawn live from trace events. */
#ifndef USTACK_TOOLS_LADDER_H
#define USTACK_TOOLS_LADDER_H

#include <stdio.h>
#include <ustack/stack.h>

struct ladder {
	FILE *out;
	struct ustack *side[2];
	const char *label[2];
	int width;
	int sub[2];
};

void ladder_init(struct ladder *l, FILE *out, struct ustack *left, const char *left_label,
		 struct ustack *right, const char *right_label);
void ladder_header(struct ladder *l);
/* A line for something that happened on one side (a drop on the wire, a note). */
void ladder_note(struct ladder *l, int side, uint64_t time_us, const char *text);
void ladder_detach(struct ladder *l);

#endif
