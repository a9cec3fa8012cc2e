#include <stdio.h>
#include <string.h>
#include <sqlite3.h>
#include <zstd.h>

#include "commands.h"
#include "flm_config.h"
#include "flm_kernels.h"
#ifdef FLM_HAVE_MPI
#include <mpi.h>
#endif

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
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
