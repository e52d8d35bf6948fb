"""``catch_up`` and ``max_catch_up`` in a policy file (`shared.policy_catch_up`): optional, and a
value that cannot work is refused when the file is checked, naming the line and the field."""

from __future__ import annotations

import pytest

from shared.errors import PolicyError
from shared.policy_catch_up import CatchUp
from shared.policy_file import parse_policy
from tests.support import PRESETS

BASE = (PRESETS / "serviceaide.yaml").read_text()


def _problems(extra: str) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policy(BASE + extra, "desk.yaml")
    return str(caught.value)


def test_left_out_every_preset_keeps_paging_the_latest_with_no_age_limit() -> None:
    policy = parse_policy(BASE)
    assert (policy.catch_up, policy.max_catch_up) == (CatchUp.LATEST, None)


@pytest.mark.parametrize("written", ["30m", "4h", "1.5h", "2d"])
def test_max_catch_up_takes_wall_clock_durations(written: str) -> None:
    policy = parse_policy(BASE + f"catch_up: all\nmax_catch_up: {written}\n")
    assert policy.catch_up is CatchUp.ALL and str(policy.max_catch_up) == written


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        ("catch_up: oldest\n", "catch_up: Input should be 'latest' or 'all'"),
        (
            "max_catch_up: 2bd\n",
            "max_catch_up: 2bd: the time since a checkpoint fell due is wall-clock time",
        ),
        ("max_catch_up: 0m\n", "max_catch_up: '0m': a duration must be longer than zero"),
        ("max_catch_up: 4\n", "max_catch_up: expected a duration such as 30m"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_the_field(extra: str, said: str) -> None:
    assert said in _problems(extra)
