"""The testcontainers settings for machines without a registry or inside a VM: applied only
when detected, never over the user's own."""

from __future__ import annotations

from tests.containers import offline_settings

NO_REAPER = lambda: "the image testcontainers/ryuk is not present"  # noqa: E731
REAPER = lambda: None  # noqa: E731


def test_nothing_is_set_where_nothing_is_needed():
    assert offline_settings({}, REAPER, in_container=False, daemon_network_is_ours=True) == {}


def test_the_reaper_is_disabled_only_when_its_image_cannot_be_had():
    assert offline_settings({}, NO_REAPER, False, False) == {"TESTCONTAINERS_RYUK_DISABLED": "true"}
    explicit = {"TESTCONTAINERS_RYUK_DISABLED": "false"}
    assert offline_settings(explicit, NO_REAPER, False, False) == {}


def test_in_a_container_image_with_the_daemon_in_this_network_ports_are_reached_directly():
    mode = {"TESTCONTAINERS_CONNECTION_MODE": "docker_host"}
    assert offline_settings({}, REAPER, True, True) == mode
    # a daemon of another namespace (socket mounted from the host): testcontainers' own rule
    assert offline_settings({}, REAPER, True, False) == {}
    assert offline_settings({"DOCKER_HOST": "tcp://10.0.0.2:2375"}, REAPER, True, True) == {}
    assert offline_settings({"TC_HOST": "10.1.1.1"}, REAPER, True, True) == {}
    assert (
        offline_settings({"TESTCONTAINERS_CONNECTION_MODE": "gateway_ip"}, REAPER, True, True) == {}
    )
