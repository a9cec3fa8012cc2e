/* commands.h - the subcommand table of `flm`. To add a command: write cmd_<name>.c with
 * `int cmd_<name>(int argc, char **argv)` (argv[0] is the command name), add one FLM_COMMAND line
 * to commands.def and the file to bin/meson.build. Commands return the process exit code:
 * 0 success, 1 failure (message already printed), 2 usage error. */
#ifndef FLM_COMMANDS_H
#define FLM_COMMANDS_H

typedef struct flm_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} flm_command;

#define FLM_COMMAND(name, fn, summary) int fn(int argc, char **argv);
#include "commands.def"
#undef FLM_COMMAND

#endif
