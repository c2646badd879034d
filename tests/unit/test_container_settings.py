"""The testcontainers settings for machines without a registry or inside a VM: applied only
when detected, never over the user's own."""

from __future__ import annotations

from tests.containers import offline_settings

NO_REAPER = lambda: "the image testcontainers/ryuk is not present"  # noqa: E731
REAPER = lambda: None  # noqa: E731


def test_nothing_is_set_where_nothing_is_needed():
    assert offline_settings({}, REAPER, in_container=False) == {}


def test_the_reaper_is_disabled_only_when_its_image_cannot_be_had():
    assert offline_settings({}, NO_REAPER, False) == {"TESTCONTAINERS_RYUK_DISABLED": "true"}
    explicit = {"TESTCONTAINERS_RYUK_DISABLED": "false"}
    assert offline_settings(explicit, NO_REAPER, False) == {}


def test_inside_a_container_with_a_local_daemon_the_ports_are_reached_on_loopback():
    assert offline_settings({}, REAPER, True) == {"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"}
    assert offline_settings({"DOCKER_HOST": "tcp://10.0.0.2:2375"}, REAPER, True) == {}
    assert offline_settings({"TC_HOST": "10.1.1.1"}, REAPER, True) == {}
