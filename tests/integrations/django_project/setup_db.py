"""Create the test database: migrations, then alice (group analysts) and bob."""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integrations.django_project.settings")


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    analysts, _ = Group.objects.get_or_create(name="analysts")
    alice = User.objects.create_user(
        "alice", "alice@acme.example", "demo", first_name="Alice", last_name="Liddell"
    )
    alice.groups.add(analysts)
    User.objects.create_user("bob", "bob@globex.example", "demo")


if __name__ == "__main__":
    main()
