/* coaps keygen --ticket-key FILE (keygen_ticket.c). */
#ifndef COAPS_TOOL_KEYGEN_TICKET_H
#define COAPS_TOOL_KEYGEN_TICKET_H

#include <stddef.h>

/* Create or rotate the ticket key file |path|: the exit code, after
 * saying what went wrong. */
int keygen_ticket_key(const char *path);
/* |len| bytes of |text| to a new 0600 file next to |path| (random name),
 * synced, then renamed over |path|: readers see the old file or the new
 * one, never half of one. 0, or -1 after saying why. */
int keygen_replace_file(const char *path, const char *text, size_t len);

#endif
