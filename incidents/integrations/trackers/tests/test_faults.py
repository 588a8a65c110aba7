"""Redis (the Celery broker) down when an issue is asked for: nothing hangs "creating", the row says why, and
asking again once Redis is back queues it.

pytest-django runs each test in a transaction, so ``on_commit`` callbacks run when the capture block ends
(in production they run as the service's transaction commits, and the API then answers 503 + Retry-After).
"""

import kombu.pools

from core.actors import Actor
from incidents.integrations.trackers import services
from incidents.integrations.trackers.tasks import action_item_issue_create_task
from incidents.models import Delivery

celery_app = action_item_issue_create_task.app  # the project's app, without importing the project (layers)


def _reset_broker_connections():
    """Forget pooled broker connections (closed, then dropped from kombu's registry), so the next publish
    connects to the broker URL set now."""
    celery_app.pool.force_close_all()
    kombu.pools.reset()
    celery_app._after_fork()


def test_broker_down_fails_the_request_with_why_and_it_can_be_asked_again(
    trackers, item, make_client, responder, private_redis, settings, django_capture_on_commit_callbacks
):
    saved = celery_app.conf.broker_url
    # kombu spells redis-py's unix:// socket URL redis+socket:// (firebreak.settings.celery_broker_url).
    broker = "redis+socket" + private_redis.url.removeprefix("unix")
    settings.CELERY_BROKER_URL = celery_app.conf.broker_url = broker
    _reset_broker_connections()
    actor = Actor.person(responder)
    try:
        private_redis.kill()
        with django_capture_on_commit_callbacks(execute=True):
            services.action_item_issue_request(item=item, tracker="jira", actor=actor)
        item.refresh_from_db()
        assert item.issue_state == "failed"
        assert "could not queue the request (Redis unavailable)" in Delivery.objects.get().error
        page = make_client(responder).get("/incidents/7/postmortem/").content.decode()
        assert "could not queue the request" in page and "Retry in Jira" in page

        private_redis.restart()
        _reset_broker_connections()
        with django_capture_on_commit_callbacks(execute=True):
            services.action_item_issue_request(item=item, tracker="jira", actor=actor)
        item.refresh_from_db()
        assert item.issue_state == "pending"
        assert Delivery.objects.filter(status="pending").count() == 1
    finally:
        celery_app.conf.broker_url = saved
        _reset_broker_connections()
