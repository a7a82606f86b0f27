"""A clinic's own wording for a rule's note: checked, sandboxed, rendered (no Flask, no Strava).

A clinic template is the note's main lines; the service adds the footer (booking link and
disclaimer) itself, so a clinic cannot drop the link or push the note past the feed's limits.
Templates are Jinja2 in the sandboxed environment, and checked before they are stored:
only the documented variables, a short list of text filters (without arguments) and plain `if`
blocks are allowed.
No loops, macros, includes, attribute or item access and no arithmetic: nothing that could
walk to Python internals or spin, so rendering one costs about what the default note does.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from strava_massage.domain.merge import BLOCK_END, BLOCK_START

# What a template may use, each a plain string (or empty): the page documents them.
VARIABLES: dict[str, str] = {
    "headline": "the rule's one-line headline, e.g. “Big week: past 30 mi”",
    "body": "the advice itself, one or two sentences",
    "reason": "the numbers that made the rule fire, in the runner's units",
    "clinic": "your clinic's name",
    "kind": "the rule's id, e.g. high_volume",
}
FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim"})
# The default notes (templates/notes/<kind>.txt) as a clinic template: the editor's starting point.
DEFAULT_TEMPLATE = "{{ headline }}\n{{ body }}\nWhy: {{ reason }}"
MAX_SOURCE_CHARS = 1000
# The footer takes the note's last line: a clinic's main part has the other three.
MAX_LINES = 3
_ALLOWED_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Filter,
    nodes.Concat,
)


class TemplateRefused(ValueError):
    """A clinic template that cannot be stored; the message says why, for the editor."""


@functools.cache
def environment() -> ImmutableSandboxedEnvironment:
    """The sandbox every clinic template is parsed and rendered in."""
    return ImmutableSandboxedEnvironment(
        autoescape=False,  # plain text for the Strava API; pages escape it when they show it
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
    )


def _check_tree(tree: nodes.Node) -> None:
    """Refuse any construct outside the allowed ones, naming the first found."""
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _ALLOWED_NODES):
            raise TemplateRefused(f"{_describe(node)} is not allowed in a note template")
        if isinstance(node, nodes.Name) and node.name not in VARIABLES:
            known = ", ".join(VARIABLES)
            raise TemplateRefused(f"unknown variable {node.name!r}; the variables are {known}")
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            allowed = ", ".join(sorted(FILTERS))
            raise TemplateRefused(f"unknown filter {node.name!r}; the filters are {allowed}")
        if isinstance(node, nodes.Filter) and (
            node.args or node.kwargs or node.dyn_args or node.dyn_kwargs
        ):
            # `trim(*headline)` or `title(x=1)`: arguments reach the filter's Python code.
            raise TemplateRefused(f"the filter {node.name!r} takes no arguments here")
        if isinstance(node, nodes.Const) and not isinstance(node.value, str | bool | None):
            raise TemplateRefused("only text constants are allowed")


_ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow", "Neg", "Pos"})


def _describe(node: nodes.Node) -> str:
    """A construct's name as a clinic would recognise it."""
    if type(node).__name__ in _ARITHMETIC:
        return "arithmetic"
    names = {
        "For": "a loop",
        "Macro": "a macro",
        "CallBlock": "a call block",
        "Include": "an include",
        "Extends": "extends",
        "Import": "an import",
        "FromImport": "an import",
        "Getattr": "attribute access (a dot)",
        "Getitem": "item access (brackets)",
        "Call": "a function call",
        "Assign": "set",
        "AssignBlock": "set",
        "Test": "a test ('is ...')",
        "FilterBlock": "a filter block",
        "With": "with",
        "Scope": "autoescape",
        "ScopedEvalContextModifier": "autoescape",
        "List": "a list",
        "Tuple": "a list",
        "Dict": "a dictionary",
        "Slice": "item access (brackets)",
    }
    return names.get(type(node).__name__, f"'{type(node).__name__}'")


@functools.lru_cache(maxsize=256)
def compile_template(source: str) -> jinja2.Template:
    """The template for `source`, or TemplateRefused with the reason."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateRefused(f"a template can be at most {MAX_SOURCE_CHARS} characters")
    if BLOCK_START in source or BLOCK_END in source:
        raise TemplateRefused("the note's own markers cannot appear in a template")
    env = environment()
    try:
        tree = env.parse(source)
        _check_tree(tree)
        return env.from_string(tree)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateRefused(f"line {e.lineno}: {e.message}") from None
    except (RecursionError, SyntaxError):
        # Deeply nested brackets or blocks overflow Jinja's parser or Python's compiler (a page
        # of `((((` or two dozen nested ifs): a clear refusal, not a crashed request.
        raise TemplateRefused("it is nested too deeply; use fewer brackets or if-blocks") from None


def render_main(source: str, values: Mapping[str, str]) -> str:
    """The note's main lines from a clinic template; TemplateRefused if they cannot be made."""
    template = compile_template(source)
    try:
        text = template.render({name: values.get(name) or "" for name in VARIABLES})
    except jinja2.TemplateError as e:
        raise TemplateRefused(f"it does not render: {e}") from None
    except (TypeError, ValueError, LookupError, ArithmeticError, RecursionError) as e:
        # Whatever got past the check fails at render as a plain Python error.
        raise TemplateRefused(f"it does not render ({type(e).__name__})") from e
    # A line can't be blank padding, and can't forge the markers the service finds its note by.
    lines = [" ".join(line.split()) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if any(line in (BLOCK_START, BLOCK_END) for line in lines):
        raise TemplateRefused("the note's own markers cannot appear in a note")
    if not lines:
        raise TemplateRefused("it renders to an empty note")
    if len(lines) > MAX_LINES:
        raise TemplateRefused(
            f"it renders {len(lines)} lines; a note has room for {MAX_LINES} before the footer"
        )
    return "\n".join(lines)
