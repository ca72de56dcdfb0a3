"""``initiatiefbot privacy …``: the retention sweep by hand, the audit log for the privacy officer, and
rotating the key that encrypts contact details."""

from __future__ import annotations

import argparse

from bot.settings import Settings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    privacy = sub.add_parser("privacy", help="retention sweep, audit log and encryption key")
    commands = privacy.add_subparsers(dest="privacy_command", required=True)
    # Each subcommand adds its own arguments in its section below.
    _sweep_parser(commands)
    _audit_parser(commands)
    _rotate_parser(commands)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.privacy_command == "sweep":
        return await _sweep(settings, args)
    if args.privacy_command == "audit":
        return await _audit(settings, args)
    if args.privacy_command == "rotate-key":
        return await _rotate_key(settings, args)
    raise AssertionError(args.privacy_command)


# --- privacy sweep --once [--as-of …] [--dry-run] ---------------------------------------------------


def _sweep_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("sweep", help="run the retention sweep once")


async def _sweep(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy sweep")


# --- privacy audit --since … ---------------------------------------------------------------------


def _audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("audit", help="print the audit log")


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy audit")


# --- privacy rotate-key ----------------------------------------------------------------------------


def _rotate_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser("rotate-key", help="re-encrypt contact details with the newest key")


async def _rotate_key(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("privacy rotate-key")
