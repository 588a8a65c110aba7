"""What higher apps add to trace pages without traces importing them.

- ``user_links``: ``links(user_id) -> list[(kind, title, url)]``, the incidents and alerts linked to a
  user's traces (incidents fills it), shown on /traces/users/<id>/.
"""

from collections.abc import Callable

UserLink = tuple[str, str, str]  # (kind, title, url)
user_links: list[Callable[[str], list[UserLink]]] = []


def user_links_for(user_id: str) -> list[UserLink]:
    return [link for provider in user_links for link in provider(user_id)]
