# tap.sh - a minimal TAP producer for the shell tests (sourced).
#   ok COND_EXIT_CODE "description"; is GOT WANT "description"; like TEXT PATTERN "description"
_n=0
_failed=0
ok() {
    _n=$((_n + 1))
    if [ "$1" -eq 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _failed=$((_failed + 1)); fi
}
is() {
    _n=$((_n + 1))
    if [ "$1" = "$2" ]; then echo "ok $_n - $3"; else
        echo "not ok $_n - $3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; _failed=$((_failed + 1)); fi
}
like() {
    _n=$((_n + 1))
    if printf '%s' "$1" | grep -q -- "$2"; then echo "ok $_n - $3"; else
        echo "not ok $_n - $3"; echo "#   '$2' not found in:"; printf '%s\n' "$1" | head -20 | sed 's/^/#     /'
        _failed=$((_failed + 1)); fi
}
diag() { echo "# $*"; }
done_testing() { echo "1..$_n"; [ "$_failed" -eq 0 ]; }
