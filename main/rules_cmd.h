#ifndef SL_RULES_CMD_H
#define SL_RULES_CMD_H

/* `sightline rules check FILE...`; argv[0] is "rules". Returns the exit status. */
int rules_cmd(int argc, char **argv);

#endif
