"""The options of `create` and `run`, as the command line gives them to lifecycle."""

from __future__ import annotations

from dataclasses import dataclass

TYPE_CHECKING = False  # typing costs milliseconds at start-up; annotations only
if TYPE_CHECKING:
    from .spec import Spec
    from .state import ContainerDir, ContainerState


@dataclass(eq=False, repr=False, match_args=False)
class CreateOptions:
    """`create`'s flags (runc's names)."""

    bundle: str
    pid_file: str | None = None
    console_socket: str | None = None
    preserve_fds: int = 0
    no_pivot: bool = False
    no_new_keyring: bool = False
    # pyoci's own receiving end instead of a console socket (`run` at a terminal).
    console_fd: int | None = None


@dataclass(eq=False, repr=False, match_args=False)
class Created:
    """A container create made, still locked: `run` goes on to start it."""

    cdir: ContainerDir
    state: ContainerState
    spec: Spec


@dataclass(eq=False, repr=False, match_args=False)
class RunOptions(CreateOptions):
    """`run`'s flags: create's, and what to do once the container is started."""

    detach: bool = False
    keep: bool = False
    no_subreaper: bool = False
