/* tap.h - a minimal TAP producer for unit tests (meson test protocol: 'tap').
 *
 *     int main(void) {
 *         TAP_OK(1 + 1 == 2, "arithmetic");
 *         TAP_EQ_INT(f(3), 9, "f(3)");
 *         return tap_done();
 *     }
 */
#ifndef FLM_TAP_H
#define FLM_TAP_H

#include <stdint.h>

int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int tap_eq_int(long long got, long long want, const char *file, int line, const char *what);
int tap_eq_str(const char *got, const char *want, const char *file, int line, const char *what);
int tap_contains(const char *hay, const char *needle, const char *file, int line, const char *what);
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tap_failures(void);
int tap_done(void);

#define TAP_OK(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define TAP_EQ_INT(got, want, what)                                                                \
    tap_eq_int((long long)(got), (long long)(want), __FILE__, __LINE__, what)
#define TAP_EQ_STR(got, want, what) tap_eq_str(got, want, __FILE__, __LINE__, what)
#define TAP_CONTAINS(hay, needle, what) tap_contains(hay, needle, __FILE__, __LINE__, what)

#endif
