#include "tap.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int n_tests, n_failed;

int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    n_tests++;
    printf("%s %d - ", cond ? "ok" : "not ok", n_tests);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        n_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

int tap_eq_int(long long got, long long want, const char *file, int line, const char *what)
{
    int ok = tap_ok(got == want, file, line, "%s", what);
    if (!ok)
        printf("#   got %lld, want %lld\n", got, want);
    return ok;
}

int tap_eq_str(const char *got, const char *want, const char *file, int line, const char *what)
{
    int ok = tap_ok(got && want && strcmp(got, want) == 0, file, line, "%s", what);
    if (!ok)
        printf("#   got \"%s\"\n#  want \"%s\"\n", got ? got : "(null)", want ? want : "(null)");
    return ok;
}

int tap_contains(const char *hay, const char *needle, const char *file, int line, const char *what)
{
    int ok = tap_ok(hay && strstr(hay, needle) != NULL, file, line, "%s", what);
    if (!ok)
        printf("#   \"%s\"\n#   does not contain \"%s\"\n", hay ? hay : "(null)", needle);
    return ok;
}

void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

int tap_failures(void)
{
    return n_failed;
}

int tap_done(void)
{
    printf("1..%d\n", n_tests);
    return n_failed ? 1 : 0;
}
