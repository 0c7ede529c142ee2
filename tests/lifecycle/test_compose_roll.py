"""The pure part of a Compose rollout: which servers the gateway reports up."""

from __future__ import annotations

from swarmai.lifecycle.compose_roll import servers_up

METRICS = """\
# HELP traefik_service_server_up service server is up, described by gauge value of 0 or 1.
# TYPE traefik_service_server_up gauge
traefik_service_server_up{service="dev-iris@docker",url="http://172.31.0.4:8000"} 1
traefik_service_server_up{service="dev-iris@docker",url="http://172.31.0.5:8000"} 0
traefik_service_server_up{service="dev-churn@docker",url="http://172.31.0.6:8000"} 1
traefik_service_requests_total{code="200",method="POST",protocol="http",service="dev-iris@docker"} 7
"""


def test_servers_up_reads_one_service_and_its_states() -> None:
    assert servers_up(METRICS, "dev-iris@docker") == {
        "http://172.31.0.4:8000": True,
        "http://172.31.0.5:8000": False,
    }


def test_servers_up_of_an_unknown_service_is_empty() -> None:
    assert servers_up(METRICS, "dev-other@docker") == {}
    assert servers_up("", "dev-iris@docker") == {}


def test_a_changed_route_is_not_rolled_side_by_side() -> None:
    from swarmai.lifecycle.compose_roll import same_routing

    running = [{"Labels": {"traefik.http.routers.r.rule": "Path(`/a`)", "other": "x"}}]
    assert same_routing({"traefik.http.routers.r.rule": "Path(`/a`)", "other": "y"}, running)
    assert not same_routing({"traefik.http.routers.r.rule": "Path(`/b`)"}, running)
    assert not same_routing({}, running)


def test_a_doubled_dollar_in_the_compose_file_is_the_same_route() -> None:
    # Compose turns the file's `$$` into the label's `$`: a route rule with a
    # regexp must not look changed, or every rollout would go stop-first.
    rule = "traefik.http.routers.s-m.rule"
    declared = {rule: "PathRegexp(`^/m/(metrics)$$`)"}
    running = [{"Labels": {rule: "PathRegexp(`^/m/(metrics)$`)"}}]
    from swarmai.lifecycle.compose_roll import same_routing
    assert same_routing(declared, running)
