/* coaps keygen --ticket-key FILE (keygen_ticket.c). */
#ifndef COAPS_TOOL_KEYGEN_TICKET_H
#define COAPS_TOOL_KEYGEN_TICKET_H

/* Create or rotate the ticket key file |path|: the exit code, after
 * saying what went wrong. */
int keygen_ticket_key(const char *path);

#endif
