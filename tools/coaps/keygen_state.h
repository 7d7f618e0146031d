/* coaps keygen --state-key FILE (keygen_state.c). */
#ifndef COAPS_TOOL_KEYGEN_STATE_H
#define COAPS_TOOL_KEYGEN_STATE_H

/* Create the state key file |path| (replace it only with |force|): the
 * exit code, after saying what went wrong. */
int keygen_state_key(const char *path, int force);

#endif
