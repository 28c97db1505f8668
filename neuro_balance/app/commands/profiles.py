"""``neuro-balance profiles``: the bundled (or given) hardware profiles as a table, or one in detail."""
from __future__ import annotations

import argparse
import warnings

from ...hardware.profile import Profile, list_profiles, load_profile
from ...hardware.spec import ChipSpec
from .common import profile_argument


def register(sub) -> None:
    parser = sub.add_parser(
        "profiles", help="list hardware profiles (weight format and bits, exponent sharing, states, rounding)",
        description="Print a table of the bundled chip profiles, or of the named profiles / YAML files: weight "
                    "format and bits, which weights share a scale, accumulator and state widths with their "
                    "overflow policy, weight rounding, and how many values are unverified. With one profile "
                    "and --details, also its sources and unverified fields.")
    parser.add_argument("profiles", nargs="*", type=profile_argument,
                        help="profile names or YAML paths (default: all bundled)")
    parser.add_argument("--details", action="store_true", help="sources, unverified fields and emulation settings")
    parser.set_defaults(func=run)


def _states(prof: Profile) -> str:
    parts = []
    for name, st in (prof.get("state") or {}).items():
        bits = st.get("bits")
        parts.append(f"{name}:{bits if bits is not None else '?'} {st.get('overflow', '?')}")
    return ", ".join(parts) or "-"


def _weights(prof: Profile, spec: ChipSpec) -> tuple[str, str]:
    if spec.ideal:
        return "float64", "-"
    allowed = prof.get("weights.bits_allowed")
    bits = f"{spec.weight_bits}" + (f" ({','.join(map(str, allowed))})" if allowed else "")
    return f"{prof.get('weights.format', 'int')}", bits


def run(args: argparse.Namespace) -> int:
    names = args.profiles or list_profiles()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        profiles = [load_profile(n) for n in names]
    header = (f"{'profile':<14}{'kind':<22}{'weight format':<20}{'bits':<22}{'shared per':<12}{'rounding':<14}"
              f"{'accumulator':<16}{'states':<34}{'unverified':>10}  verified against")
    print(header)
    print("-" * len(header))
    for prof in profiles:
        spec = ChipSpec.from_profile(prof)
        fmt, bits = _weights(prof, spec)
        acc = "-" if spec.accumulator is None else f"{spec.accumulator.bits} {spec.accumulator.overflow}"
        shared = "-" if spec.ideal else spec.granularity
        rows.append(prof)
        print(f"{prof.name:<14}{prof.kind:<22}{fmt:<20}{bits:<22}{shared:<12}{prof.get('weights.rounding', '-'):<14}"
              f"{acc:<16}{_states(prof):<34}{len(prof.unverified):>10}  {', '.join(prof.verified_against) or '-'}")
    if args.details:
        for prof in rows:
            spec = ChipSpec.from_profile(prof)
            print(f"\n{prof.name} ({prof.path})")
            print("  sources:")
            for src in prof.sources:
                print(f"    - {src}")
            print(f"  unverified: {', '.join(prof.unverified) or 'none'}")
            for tool in prof.verified_against:
                fields = sorted(f for f, t in prof.verified.items() if t == tool)
                print(f"  verified against {tool}: {', '.join(fields)}")
            if not spec.ideal:
                code = f"spike counts over {spec.window} steps" if spec.spiking else \
                    f"graded {spec.activation_bits}-bit activity"
                print(f"  emulation: weights [{spec.weight_qmin}, {spec.weight_qmax}] ({spec.weight_form} scales per "
                      f"{spec.granularity}, {spec.method}), {code}, reset {spec.reset}, compare {spec.compare}")
    return 0
