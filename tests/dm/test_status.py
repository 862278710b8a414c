"""dm.status: what a status code means to a job."""

import pytest

from dmgateway.dm import status as st


@pytest.mark.parametrize("code", [200, 201, 202, 207, 211, 212])
def test_success(code):
    assert st.is_success(code)


@pytest.mark.parametrize("code", [None, 101, 213, 214, 215, 216, 304, 401, 404, 500, 507, "200"])
def test_not_success(code):
    assert not st.is_success(code)


def test_names():
    assert st.describe(424) == "424 Size mismatch"
    assert st.describe(None) == "no status"
    assert st.describe(299) == "299 (unknown)"
    assert st.name(213) == "Chunked item accepted and buffered"
    assert st.name(299) == "Status 299"
    assert st.is_auth_challenge(401) and st.is_auth_challenge(407) and not st.is_auth_challenge(212)
