/* flm - the command-line front end. Each subcommand lives in its own cmd_*.c file and is listed
 * in bin/commands.h; this file only dispatches. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "flm_config.h"

static const flm_command commands[] = {
#define FLM_COMMAND(name, fn, summary) {name, fn, summary},
#include "commands.def"
#undef FLM_COMMAND
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: flm <command> [options]   (flm <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nflmstream %s - full-duplex spoken-dialog training data toolkit\n", FLM_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("flmstream %s\n", FLM_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s'", argv[1]);
    fputs("see flm --help\n", stderr);
    return 2;
}
