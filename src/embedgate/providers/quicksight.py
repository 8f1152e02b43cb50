"""Amazon QuickSight: embed URLs generated per render through the AWS API (boto3).

Documented in the QuickSight API reference, GenerateEmbedUrlForRegisteredUser
(https://docs.aws.amazon.com/quicksight/latest/APIReference/API_GenerateEmbedUrlForRegisteredUser.html)
and GenerateEmbedUrlForAnonymousUser
(https://docs.aws.amazon.com/quicksight/latest/APIReference/API_GenerateEmbedUrlForAnonymousUser.html),
whose wire shapes are botocore's ``quicksight/2018-04-01/service-2.json``:

* ``registered`` (``EMBEDGATE_QUICKSIGHT_MODE``): ``UserArn`` names the QuickSight user the
  principal maps to (``EMBEDGATE_QUICKSIGHT_USER_ARN``, a template over ``{subject}``,
  ``{email}``, ``{tenant}``); row-level security follows that user's own permissions;
* ``anonymous`` (the default): ``Namespace``, ``AuthorizedResourceArns`` (the dashboards)
  and ``SessionTags`` built from principal attributes (row-level security by tags).

Both send ``SessionLifetimeInMinutes`` (15..600) and ``ExperienceConfiguration`` for a
dashboard. The answer's ``EmbedUrl`` is valid for 5 minutes and meant to be opened once,
so it is a resource-bound credential: a new URL per render, never cached, no session
token. Requests are signed with SigV4 by boto3 from the usual AWS credential chain; the
optional extra ``embedgate[quicksight]`` installs boto3.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import anyio

from ..config import Config
from ..errors import ConfigurationError, IssuerError, PrincipalError
from ..issuers.base import IssueRequest
from ..principal import Principal
from ..token import EmbedToken
from . import html
from .base import ProfileBase
from .browser import BrowserPolicy
from .options import ProfileOptions

URL_VALIDITY: Final = 300.0
MIN_SESSION_MINUTES: Final = 15
MAX_SESSION_MINUTES: Final = 600
MAX_TAGS: Final = 50
SETTINGS: Final = (
    "mode",
    "region",
    "account_id",
    "namespace",
    "user_arn",
    "session_tags",
    "allowed_domains",
    "session_minutes",
    "endpoint_url",
    "connect_timeout",
    "read_timeout",
    "retries",
)
_DASHBOARD_ID = re.compile(r"^[A-Za-z0-9_-]{1,512}$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]$")


def _dashboard(resource: str | None) -> str:
    if not resource or not _DASHBOARD_ID.match(resource):
        raise ConfigurationError("quicksight resource", f"not a dashboard id: {resource!r}")
    return resource


class QuickSightIssuer:
    """Embed URLs from QuickSight's GenerateEmbedUrlFor{Registered,Anonymous}User."""

    def __init__(
        self,
        client: Any,
        *,
        mode: str,
        region: str,
        account_id: str,
        namespace: str,
        user_arn: str | None,
        session_tags: Mapping[str, str],
        allowed_domains: tuple[str, ...],
        session_minutes: int,
    ) -> None:
        self._client = client
        self.mode = mode
        self.region = region
        self.account_id = account_id
        self.namespace = namespace
        self.user_arn = user_arn
        self.session_tags = dict(session_tags)
        self.allowed_domains = allowed_domains
        self.session_minutes = session_minutes

    @property
    def name(self) -> str:
        return "quicksight"

    def cache_scope(self) -> str:
        where = (self.name, self.mode, self.region, self.account_id, self.namespace)
        return repr(
            (*where, self.user_arn, sorted(self.session_tags.items()), self.session_minutes)
        )

    def dashboard_arn(self, dashboard: str) -> str:
        return f"arn:aws:quicksight:{self.region}:{self.account_id}:dashboard/{dashboard}"

    def tags(self, principal: Principal) -> list[dict[str, str]]:
        """``SessionTags`` for row-level security: tag key → principal attribute."""
        tags = []
        for key, attribute in sorted(self.session_tags.items()):
            if attribute == "tenant":
                value: Any = principal.tenant
            else:
                value = principal.attributes.get(attribute)
            if value is None:
                raise PrincipalError(
                    f"attributes.{attribute}",
                    f"is required by EMBEDGATE_QUICKSIGHT_SESSION_TAGS (tag {key!r})",
                )
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            if len(text) > 256:
                raise PrincipalError(f"attributes.{attribute}", "longer than QuickSight's 256")
            tags.append({"Key": key, "Value": text})
        return tags

    def arguments(self, request: IssueRequest) -> dict[str, Any]:
        """The API call's parameters, as boto3 takes them."""
        dashboard = _dashboard(request.resource)
        minutes = max(
            MIN_SESSION_MINUTES, min(self.session_minutes, MAX_SESSION_MINUTES, request.ttl // 60)
        )
        args: dict[str, Any] = {
            "AwsAccountId": self.account_id,
            "SessionLifetimeInMinutes": minutes,
            "ExperienceConfiguration": {"Dashboard": {"InitialDashboardId": dashboard}},
        }
        if self.allowed_domains:
            args["AllowedDomains"] = list(self.allowed_domains)
        if self.mode == "registered":
            assert self.user_arn is not None
            args["UserArn"] = _fill(self.user_arn, request.principal)
        else:
            args["Namespace"] = self.namespace
            args["AuthorizedResourceArns"] = [self.dashboard_arn(dashboard)]
            tags = self.tags(request.principal)
            if tags:
                args["SessionTags"] = tags
        return args

    def issue(self, request: IssueRequest) -> EmbedToken:
        args = self.arguments(request)
        call = (
            self._client.generate_embed_url_for_registered_user
            if self.mode == "registered"
            else self._client.generate_embed_url_for_anonymous_user
        )
        try:
            answer = call(**args)
        except Exception as exc:
            raise _issuer_error(exc) from None
        url = answer.get("EmbedUrl") if isinstance(answer, Mapping) else None
        if not isinstance(url, str) or not url.startswith("https://"):
            raise IssuerError(
                "quicksight: the embed URL request answered without an EmbedUrl",
                provider=self.name,
                code="provider_malformed",
                retry_after=30.0,
            )
        request_id = answer.get("RequestId")
        return EmbedToken(
            token=url,
            expires_at=request.now + URL_VALIDITY,
            issued_at=request.now,
            subject=request.principal.subject,
            jti=request_id if isinstance(request_id, str) else None,
            single_use=True,
            url=url,
        )

    async def aissue(self, request: IssueRequest) -> EmbedToken:
        # boto3 is synchronous: its call runs in a worker thread, off the event loop.
        return await anyio.to_thread.run_sync(self.issue, request)

    def jwks(self) -> dict[str, Any] | None:
        return None

    def __repr__(self) -> str:
        return f"QuickSightIssuer(mode={self.mode!r}, region={self.region!r})"


def _fill(template: str, principal: Principal) -> str:
    values = {"subject": principal.subject, "email": principal.email, "tenant": principal.tenant}
    for name, value in values.items():
        if "{" + name + "}" in template:
            if not value or not re.match(r"^[\w+=,.@-]+$", value):
                raise PrincipalError(
                    name, "cannot name a QuickSight user (EMBEDGATE_QUICKSIGHT_USER_ARN)"
                )
            template = template.replace("{" + name + "}", value)
    return template


def _issuer_error(exc: Exception) -> IssuerError:
    """An :class:`IssuerError` from a botocore failure, by its error code (never its text,
    which may quote request parameters)."""
    code = "provider_unavailable"
    status: int | None = None
    retry_after = 5.0
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error") or {}
        name = str(error.get("Code", ""))
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode") if isinstance(meta, Mapping) else None
        if name in ("ThrottlingException", "LimitExceededException") or status == 429:
            code, retry_after = "provider_rate_limited", 30.0
        elif (
            name in ("AccessDeniedException", "UnrecognizedClientException")
            or status
            in (
                401,
                403,
            )
            or (status is not None and 400 <= status < 500)
        ):
            code, retry_after = "provider_rejected", 60.0
        problem = f"the embed URL request failed ({name or 'HTTP ' + str(status)})"
    elif "timeout" in type(exc).__name__.lower():
        code = "provider_timeout"
        problem = f"the embed URL request timed out ({type(exc).__name__})"
    else:
        problem = f"the embed URL request could not reach QuickSight ({type(exc).__name__})"
    return IssuerError(
        f"quicksight: {problem}",
        provider="quicksight",
        code=code,
        status=status,
        retry_after=retry_after,
    )


class QuickSightProfile(ProfileBase):
    """QuickSight dashboards (``dashboard``: an iframe on a one-time embed URL)."""

    name = "quicksight"
    snippet_kinds = ("dashboard",)

    def browser_policy(self) -> BrowserPolicy:
        """Nothing to write: the embed URL is never swapped (``data-embedgate-refresh``)."""
        return BrowserPolicy()

    def build_issuer(self, config: Config, options: Mapping[str, Any]) -> QuickSightIssuer:
        opts = ProfileOptions(self.name, options, SETTINGS)
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError:
            raise ConfigurationError(
                "EMBEDGATE_PROVIDER", "QuickSight needs boto3: pip install 'embedgate[quicksight]'"
            ) from None
        mode = opts.choice("mode", ("anonymous", "registered"), "anonymous")
        region = opts.require("region", " (the AWS region of your QuickSight account)")
        if not _REGION.match(region):
            raise ConfigurationError(opts.setting("region"), f"not an AWS region: {region!r}")
        account = opts.require("account_id", " (your 12-digit AWS account id)")
        if not _ACCOUNT.match(account):
            raise ConfigurationError(opts.setting("account_id"), "expected 12 digits")
        user_arn = opts.text("user_arn")
        if mode == "registered" and user_arn is None:
            raise ConfigurationError(
                opts.setting("user_arn"),
                "is required in the registered mode, e.g. "
                "arn:aws:quicksight:<region>:<account>:user/default/{subject}",
            )
        tags = opts.string_map("session_tags")
        if mode == "registered" and tags:
            raise ConfigurationError(
                opts.setting("session_tags"), "registered users get their own row-level security"
            )
        if len(tags) > MAX_TAGS:
            raise ConfigurationError(opts.setting("session_tags"), f"at most {MAX_TAGS} tags")
        domains = opts.names("allowed_domains")
        if len(domains) > 3:
            raise ConfigurationError(opts.setting("allowed_domains"), "QuickSight accepts 3")
        endpoint = opts.url("endpoint_url", None, production=config.is_production)
        # A session of its own: credentials resolved for this engine, not boto3's global one.
        client = boto3.session.Session().client(
            "quicksight",
            region_name=region,
            endpoint_url=endpoint,
            config=BotoConfig(
                connect_timeout=opts.number("connect_timeout", 3.0, minimum=0.05, maximum=60),
                read_timeout=opts.number("read_timeout", 10.0, minimum=0.05, maximum=300),
                retries={
                    "total_max_attempts": 1 + opts.integer("retries", 2, maximum=5),
                    "mode": "standard",
                },
            ),
        )
        return QuickSightIssuer(
            client,
            mode=mode,
            region=region,
            account_id=account,
            namespace=opts.text("namespace", "default") or "default",
            user_arn=user_arn,
            session_tags=tags,
            allowed_domains=domains,
            session_minutes=opts.integer(
                "session_minutes",
                max(MIN_SESSION_MINUTES, min(MAX_SESSION_MINUTES, config.ttl // 60)),
                minimum=MIN_SESSION_MINUTES,
                maximum=MAX_SESSION_MINUTES,
            ),
        )

    @property
    def session_tokens(self) -> bool:
        """Never: each embed URL opens one dashboard, once."""
        return False

    def resource_for(self, kind: str, resource: str | None) -> str | None:
        self.check_kind(kind)
        return _dashboard(resource)

    def endpoint_payload(self, token: EmbedToken, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "url": token.url}

    def snippet(
        self, kind: str, resource: str | None, token: EmbedToken, options: Mapping[str, str]
    ) -> str:
        """An iframe on the embed URL. The QuickSight session then lives on its own
        (``SessionLifetimeInMinutes``); a new URL would reload the dashboard, so embedgate.js
        leaves it alone (``data-embedgate-refresh="none"``)."""
        self.check_kind(kind)
        html.check_options(self.name, kind, options)
        if not token.url:
            raise ConfigurationError("quicksight snippet", "the token carries no embed URL")
        return html.element(
            "iframe",
            [
                ("src", token.url),
                ("data-embedgate-resource", _dashboard(resource)),
                ("data-embedgate-refresh", "none"),
                html.binding(options),
                ("frameborder", "0"),
                *html.presentation(options),
            ],
        )
