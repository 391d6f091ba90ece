"""Errors of webhook subscriptions and deliveries."""

from __future__ import annotations

from shared.errors import NotFound, Unprocessable


class WebhookNotFound(NotFound):
    """No webhook subscription with this id is visible to the key."""

    code = "webhook_not_found"
    fix = "Check the id (GET /v1/webhooks lists the subscriptions your key manages)."


class DeliveryNotFound(NotFound):
    """The subscription has no delivery with this id."""

    code = "webhook_delivery_not_found"
    fix = "Check the id (GET /v1/webhooks/{id}/deliveries lists them)."


class WebhookUrlNotHttps(Unprocessable):
    """A webhook URL must use https (plain http is allowed only in development)."""

    code = "webhook_url_not_https"
    fix = "Send an https:// URL."


class WebhookUrlForbidden(Unprocessable):
    """The URL's host resolves to a loopback, private, link-local, metadata or other
    non-public address, which the server does not call."""

    code = "webhook_url_forbidden"
    fix = "Send a URL of a publicly reachable host."


class WebhookUrlUnresolvable(Unprocessable):
    """The URL's host name does not resolve."""

    code = "webhook_url_unresolvable"
    fix = "Check the host name."


class UnknownEventType(Unprocessable):
    """An event type is not one the API sends; `known_event_types` lists them."""

    code = "unknown_event_type"
    fix = "Use event types from known_event_types."


class WebhookOwnerInvalid(Unprocessable):
    """A subscription is owned by exactly one ICS or one organisation the key manages."""

    code = "webhook_owner_invalid"
    fix = "Give ics_code or organisation_id (a bound key's own binding is the default)."
