/* `sightline debug ...` (debug_cmd.c): dumps of a data directory. */
#ifndef SL_DEBUG_CMD_H
#define SL_DEBUG_CMD_H

/* argv[0] is "debug". Returns the process exit code. */
int sl_debug_main(int argc, char **argv);

#endif
