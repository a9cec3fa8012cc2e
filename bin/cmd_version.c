#include <stdio.h>
#include <string.h>
#include <sqlite3.h>
#include <zstd.h>

#include "cli.h"
#include "commands.h"
#include "flm_config.h"
#include "flm_kernels.h"
#ifdef FLM_HAVE_MPI
#include <mpi.h>
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: flm version\n\nPrints the version and the build's libraries.\n");
}

int cmd_version(int argc, char **argv)
{
    const cli_option none[] = {{0}};
    const cli_option *const tables[] = {none, NULL};
    const cli_command c = {"version", usage, tables, 0, NULL};
    int n_args, rc = cli_parse(&c, argc, argv, NULL, &n_args);
    if (rc != CLI_PARSED)
        return rc;
    char mpi[128] = "without mpi";
#ifdef FLM_HAVE_MPI
    int n = 0;
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    if (MPI_Get_library_version(v, &n) == MPI_SUCCESS) /* "Open MPI v4.1.4, package: ..." */
        snprintf(mpi, sizeof mpi, "mpi %.*s", (int)strcspn(v, ",\n"), v);
#endif
    printf("flmstream %s (zstd %s, sqlite %s, %s, openblas core %s)\n", FLM_VERSION,
           ZSTD_versionString(), sqlite3_libversion(), mpi, flm_kernels_blas_core());
    return 0;
}
