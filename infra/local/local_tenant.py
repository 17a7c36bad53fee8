#!/usr/bin/env python3
"""The demo tenant on the local stack.

Writes .local/demo.yaml: infra/tenants/demo.yaml as the local stack runs it, its Chatwoot at
the chat's local fake. With --always-open its business hours and holidays are left out, so a
conversation gets the same replies at any time of day (the tests' case, and run.sh's
--always-open).

With --status it writes nothing and prints whether the demo tenant is open right now in its
own time zone, as the worker decides it (business hours per weekday, open <= time < close,
holidays closed all day), and when it opens next; with --always-open as well, that this run
ignores its hours.

    local_tenant.py --chatwoot-port N [--always-open]
    local_tenant.py --status [--always-open]
"""

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "infra/tenants/demo.yaml"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
HORIZON_DAYS = 31  # as far ahead as the worker looks for the next opening
RESTART_HINT = "bash infra/local/run.sh --always-open"


def parse_time(text):
    return dt.time.fromisoformat(str(text))


class Hours:
    """A tenant's business hours, read from its YAML file. No business_hours: always open."""

    def __init__(self, tenant):
        self.name = tenant.get("name", tenant.get("phone_number_id", "tenant"))
        self.zone_name = tenant["timezone"]
        self.zone = ZoneInfo(self.zone_name)
        hours = tenant.get("business_hours")
        self.always_open = hours is None
        self.days = {
            day: sorted((parse_time(i["open"]), parse_time(i["close"])) for i in (hours or {}).get(day) or [])
            for day in WEEKDAYS
        }
        self.holidays = {dt.date.fromisoformat(str(h)) for h in tenant.get("holidays") or []}

    def intervals(self, date):
        if date in self.holidays:
            return []
        return self.days[WEEKDAYS[date.weekday()]]

    def is_open(self, now):
        if self.always_open:
            return True
        local = now.astimezone(self.zone)
        time = local.time().replace(tzinfo=None)
        return any(start <= time < close for start, close in self.intervals(local.date()))

    def next_opening(self, now):
        """The next opening after now, in the tenant's zone, or None within the horizon."""
        if self.always_open:
            return None
        today = now.astimezone(self.zone).date()
        for offset in range(HORIZON_DAYS + 1):
            date = today + dt.timedelta(days=offset)
            for start, _ in self.intervals(date):
                opening = dt.datetime.combine(date, start, tzinfo=self.zone)
                if opening > now:
                    return opening
        return None


def when(moment, now):
    """'today at 08:00', 'tomorrow at 08:00' or 'Monday 2027-01-04 at 08:00'."""
    days = (moment.date() - now.astimezone(moment.tzinfo).date()).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"{moment:%A %Y-%m-%d}")
    return f"{day} at {moment:%H:%M}"


def status(tenant, always_open, now=None):
    """The lines run.sh prints at start: open or closed right now, and what to do if closed."""
    hours = Hours(tenant)
    now = now or dt.datetime.now(dt.timezone.utc)
    local = now.astimezone(hours.zone)
    clock = f"{local:%A %H:%M} in {hours.zone_name}"
    if hours.always_open:
        return [f"Demo tenant {hours.name}: OPEN at any hour (it has no business hours); it is {clock}."]
    really_open = hours.is_open(now)
    if always_open:
        return [
            f"Demo tenant {hours.name}: OPEN for this run (--always-open: its business hours and "
            f"holidays are left out). By its real hours it would be {'open' if really_open else 'closed'} now ({clock})."
        ]
    if really_open:
        close = next(c for s, c in hours.intervals(local.date()) if s <= local.time().replace(tzinfo=None) < c)
        return [f"Demo tenant {hours.name}: OPEN now ({clock}), until {close:%H:%M}."]
    opening = hours.next_opening(now)
    opens = f"; it opens {when(opening, now)}" if opening else ""
    return [
        f"Demo tenant {hours.name}: CLOSED now ({clock}{opens}). The bot answers the first "
        "message with its off-hours text, then stays silent until it opens.",
        f"To chat as if it were open, restart with: {RESTART_HINT}   (or: ALWAYS_OPEN=1 bash infra/local/run.sh)",
    ]


def write_local_copy(chatwoot_port, always_open):
    text = DEMO.read_text()
    text, replaced = re.subn(r"base_url: https://\S+", f"base_url: http://127.0.0.1:{chatwoot_port}", text)
    if replaced != 1:
        sys.exit("demo.yaml: expected one desk.chatwoot.base_url")
    if always_open:
        # Top-level blocks end where the next top-level key starts.
        text = re.sub(r"(?ms)^(business_hours|holidays):.*?(?=^\S)", "", text)
    (ROOT / ".local/demo.yaml").write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chatwoot-port", type=int, help="where the chat's local fake of Chatwoot listens")
    parser.add_argument("--always-open", action="store_true", help="leave the business hours and holidays out")
    parser.add_argument("--status", action="store_true", help="print whether the demo tenant is open now; write nothing")
    args = parser.parse_args()
    if args.status:
        print("\n".join(status(yaml.safe_load(DEMO.read_text()), args.always_open)))
        return
    if args.chatwoot_port is None:
        parser.error("--chatwoot-port is required unless --status is given")
    write_local_copy(args.chatwoot_port, args.always_open)


if __name__ == "__main__":
    main()
