"""PagerDuty: pages out through the Events API v2, state back in through signed v3 webhooks."""
