#!/bin/sh
# Writes heapscan's bash completion from its own help texts:
#   gen-completion.sh HEAPSCAN TEMPLATE OUT
# Commands: the "commands:" list of 'heapscan --help'.  Options of a
# command: every --long word of 'heapscan CMD --help' and the short
# options at the start of its option lines ("  -p, --pid PID").
set -eu
hs=$1 tmpl=$2 out=$3

cmds=$("$hs" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][a-z0-9-]*\) .*/\1/p' | tr '\n' ' ')
[ -n "$cmds" ] || { echo "gen-completion: no commands in '$hs --help'" >&2; exit 1; }
cases=$(mktemp)
trap 'rm -f "$cases" "$out.tmp"' EXIT
for c in $cmds; do
    help=$("$hs" "$c" --help)
    opts=$( {
        printf '%s\n' "$help" | grep -oE '(^|[^A-Za-z0-9_-])--[a-z][a-z0-9-]+' | sed 's/^[^-]*//'
        printf '%s\n' "$help" | sed -n 's/^ \{1,\}\(-[A-Za-z0-9]\),.*/\1/p; s/^ \{1,\}\(-[A-Za-z0-9]\) .*/\1/p'
        echo --help
    } | sort -u | tr '\n' ' ')
    printf '        %s) echo %s;;\n' "$c" "'${opts% }'" >> "$cases"
done
# Both replacements in awk: the option lists hold no '&' or '\'.
awk -v cmds="${cmds% }" -v casefile="$cases" '
    /@CMDS@/ { sub(/@CMDS@/, cmds) }
    /^@CASES@$/ { while ((getline l < casefile) > 0) print l; next }
    { print }' "$tmpl" > "$out.tmp"
mv "$out.tmp" "$out"
trap - EXIT
rm -f "$cases"
