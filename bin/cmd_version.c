#include <stdio.h>
#include <sqlite3.h>
#include <zstd.h>

#include "commands.h"
#include "flm_config.h"

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("flmstream %s (zstd %s, sqlite %s)\n", FLM_VERSION, ZSTD_versionString(),
           sqlite3_libversion());
    return 0;
}
