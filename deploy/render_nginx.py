"""Write an nginx config for the gateway processes on the given ports (from nginx.conf.template)."""

from __future__ import annotations

import argparse
from pathlib import Path

TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def render(*, ports: list[int], listen: str, prefix: Path, static_root: Path) -> str:
    """Return the nginx config text for daphne processes on `ports`, listening on `listen`."""
    upstreams = "\n".join(f"        server 127.0.0.1:{port} max_fails=0;" for port in ports)
    text = TEMPLATE.read_text()
    for key, value in {
        "@UPSTREAMS@": upstreams,
        "@LISTEN@": listen,
        "@PREFIX@": str(prefix),
        "@STATIC_ROOT@": str(static_root),
    }.items():
        text = text.replace(key, value)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ports", required=True, help="comma-separated daphne ports")
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--prefix", required=True, type=Path, help="directory for pid, logs and temp files")
    parser.add_argument("--static-root", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    args.prefix.mkdir(parents=True, exist_ok=True)
    ports = [int(port) for port in args.ports.split(",") if port.strip()]
    args.out.write_text(
        render(ports=ports, listen=args.listen, prefix=args.prefix.resolve(), static_root=args.static_root.resolve())
    )


if __name__ == "__main__":
    main()
