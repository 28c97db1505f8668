#!/usr/bin/env bash
# Make one virtual environment per chip vendor's simulator, for scripts/check_against_vendor.py.
# Each tool gets its own: sinabs pins nir<=1.0.4 (the project needs nir>=1.0.8), nengo-loihi needs
# numpy<2, and lava-nc installs only on Python 3.10.
#
#   bash scripts/vendor_venvs.sh [DIR] [TOOL ...]     # DIR defaults to .vendor-venvs; TOOLs to all
set -uo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.vendor-venvs}
shift || true
tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(xylosim akida sinabs nengo_loihi lava)
mkdir -p "$dir"

make_venv() {  # make_venv NAME PYTHON PIP-ARGS...; a second pip line after "--then"
    local name=$1 python=$2; shift 2
    if [ -x "$dir/$name/bin/python" ]; then echo "$name: exists"; return 0; fi
    "$python" -m venv "$dir/$name" || return 1
    local first=() second=()
    while [ $# -gt 0 ] && [ "$1" != "--then" ]; do first+=("$1"); shift; done
    [ $# -gt 0 ] && { shift; second=("$@"); }
    "$dir/$name/bin/pip" install -q "${first[@]}" || return 1
    if [ ${#second[@]} -gt 0 ]; then "$dir/$name/bin/pip" install -q "${second[@]}" || return 1; fi
    echo "$name: made"
}

status=0
for tool in "${tools[@]}"; do
    case $tool in
        # rockpool beside xylosim: the driver also compares the project's integer weights with its global_quantize
        xylosim)     make_venv xylosim python3 xylosim==0.1.3 rockpool==3.1.0 numpy ;;
        akida)       make_venv akida python3 akida==2.19.3 ;;
        # PyPI's samna is a stub that downloads the real one on import: sinabs goes in without its deps,
        # and the drivers stub samna out. torch==2.13.0 is the CPU build.
        sinabs)      make_venv sinabs python3 torch==2.13.0 numpy pbr 'nir<=1.0.4' nirtorch matplotlib \
                         --then --no-deps sinabs==3.1.3 ;;
        nengo_loihi) make_venv nengo_loihi python3 nengo-loihi==1.1.0 nengo==3.2.0 'numpy<2' ;;
        lava)
            py310=$(command -v python3.10 || true)
            if [ -z "$py310" ] || ! "$py310" -c 'import venv' 2>/dev/null; then
                echo "lava: skipped: needs Python 3.10"; continue
            fi
            make_venv lava "$py310" lava-nc==0.10.0 ;;
        *) echo "unknown tool $tool (xylosim akida sinabs nengo_loihi lava)" >&2; status=2; continue ;;
    esac || { echo "$tool: failed" >&2; status=1; }
done
exit $status
