"""Authenticators: how the user proves who they are to the provider.

- :class:`HeadlessAuthenticator` fills the provider's forms (tests, CI, scripts, demos), and with
  a :class:`SoftwarePasskey` (a test key pair) answers its passkey pages too;
- :class:`LoopbackBrowserAuthenticator` opens the browser, waits on ``127.0.0.1`` (CLIs);
- :class:`CibaAuthenticator` asks the user to approve on their own device (CIBA poll mode: no
  browser at all);
- :class:`RedirectAuthenticator` raises :class:`~client_sdk.errors.StepUpRequired` (web apps).
"""

from client_sdk.authenticators.base import Authenticator, LoginRequest
from client_sdk.authenticators.ciba import BackchannelLogin, CibaAuthenticator
from client_sdk.authenticators.headless import HeadlessAuthenticator
from client_sdk.authenticators.loopback import LoopbackBrowserAuthenticator
from client_sdk.authenticators.passkey import SoftwarePasskey
from client_sdk.authenticators.redirect import RedirectAuthenticator

__all__ = [
    "Authenticator",
    "BackchannelLogin",
    "CibaAuthenticator",
    "HeadlessAuthenticator",
    "LoginRequest",
    "LoopbackBrowserAuthenticator",
    "RedirectAuthenticator",
    "SoftwarePasskey",
]
