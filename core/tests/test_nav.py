"""The header's links: one list, filtered by role, the current page marked."""

from django.test import RequestFactory

from core.nav import nav_links


def _links(user, path="/"):
    request = RequestFactory().get(path)
    request.user = user
    return {link["label"]: link for link in nav_links(request)}


def test_the_admin_link_shows_to_staff_admins_only(make_user):
    viewer, admin = make_user("viewer"), make_user("admin")
    assert "Admin" not in _links(viewer)
    assert "Admin" not in _links(admin)  # not staff: /admin/ would refuse them
    admin.is_staff = True
    assert _links(admin)["Admin"]["url"] == "/admin/"
    assert "Keys" in _links(viewer)


def test_the_longest_matching_link_is_the_current_page(make_user):
    user = make_user("viewer")
    assert _links(user, "/")["Dashboard"]["current"]
    links = _links(user, "/incidents/alerts/")
    assert links["Alerts"]["current"] and not links["Incidents"]["current"] and not links["Dashboard"]["current"]
    assert _links(user, "/incidents/12/")["Incidents"]["current"]
    assert _links(user, "/keys/")["Keys"]["current"]
