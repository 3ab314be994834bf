"""Translate the model IR (model/lang/expr.py) to z3: Init, Trans and the properties.

The symbolic engines read the same action definitions as the explicit engine
(checker/compile_np.py); this module only translates operators and sorts:

* state fields: bool -> Bool, word(w) -> BitVec(w), enum -> Int in 0..len-1,
  nat(fixed=N) -> Int in 0..N, nat(scope=...) -> an UNBOUNDED Int >= 0, so a proof covers
  every scope (any size, any number of descriptors, mappings and pins);
* parameters range over their whole sort (every bit pattern of a word, every natural),
  unless `Param.symbolic_domain` restricts them to the explored domain;
* one step = an action index, that action's parameters, the encoded outcome (Int), the
  effect bits (BitVec(8)) and the index of the deciding rule (Int); the first rule whose
  condition holds decides, fields without an update keep their value, and updates are fitted
  to the field's sort exactly as compile_np.fit does.

Every term is built once over *template* variables (s.<field>, n.<field>, p.<action>.<param>,
out, eff, br, act) and instantiated per step with z3.substitute.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import z3

from checker.compile_np import fit
from checker.interrupt import watching
from checker.z3_terms import Z, as_int, coerce, domain, translate, value_term, z3_sort
from model.lang.action import Action, Semantics
from model.lang.design import Design
from model.lang.expr import BOOL, INT, E, const, width_of
from model.lang.schema import Field, Schema, Sort
from properties.catalogue import Property
from properties.views import EFF_SORT, TransitionView


@dataclass
class ActionEnc:
    """One action's template terms."""

    index: int
    action: Action
    sem: Semantics
    params: dict[str, Z]  # param name -> template variable
    pdom: Z  # parameter domains
    enabled: Z
    updates: dict[str, Z]  # field -> next value (every field)
    out: Z
    eff: Z
    br: Z
    labels: list[str]

    def step(self, s: Mapping[str, Z], n: Mapping[str, Z], out: Z, eff: Z, br: Z,
             observe: bool = True) -> Z:
        """Trans_a over template state `s`, next state `n`: enabled, exactly one rule decides
        (with `observe`, also the outcome, effects and deciding rule)."""
        eqs = [n[f] == u for f, u in self.updates.items()]
        if observe:
            eqs += [out == self.out, eff == self.eff, br == self.br]
        return z3.And(self.enabled, self.pdom, *eqs)


class Encoder:
    """The design's transition system in z3, over template variables."""

    def __init__(self, design: Design) -> None:
        from checker.wellformed import validate

        validate(design)  # a design that is not well formed is refused, never masked
        self.design = design
        self.schema: Schema = design.schema
        # the replayed fields (model/lang/schema.py) are left out, as the packer leaves them:
        # no explored action and no property reads them (checker/interpreter.py
        # replayed_fields), so the encoded system is the exact quotient
        self.fields: tuple[Field, ...] = tuple(f for f in self.schema.fields if not f.replayed)
        self.replayed = tuple(f.name for f in self.schema.fields if f.replayed)
        self.s = {f.name: self._var(f"s.{f.name}", f.sort) for f in self.fields}
        self.n = {f.name: self._var(f"n.{f.name}", f.sort) for f in self.fields}
        self.out = z3.Int("out")
        self.eff = z3.BitVec("eff", width_of(EFF_SORT))
        self.br = z3.Int("br")
        self.act = z3.Int("act")
        # an action with nothing to explore (write/read/lseek: f_pos is the trace's) is never
        # enabled: not encoded at all (the indices stay the design's)
        self.actions = [self._encode_action(i, a) for i, a in enumerate(design.actions)
                        if a.explored]
        self._at = {ae.index: ae for ae in self.actions}
        self._prop_cache: dict[tuple[str, int], Z] = {}
        self._trans_cache: dict[tuple[bool, bool], Z] = {}
        self._unroll: Z | None = None
        self._ta_cache: dict[tuple[int, bool], Z] = {}

    # -- variables ----------------------------------------------------------------------------
    @staticmethod
    def _var(name: str, sort: Sort) -> Z:
        return z3.Const(name, z3_sort(sort.expr_sort))

    def action_at(self, index: int) -> ActionEnc:
        """The encoding of the design's action number `index` (an explored one)."""
        return self._at[index]

    def state_vars(self, tag: str) -> dict[str, Z]:
        return {f.name: self._var(f"{f.name}@{tag}", f.sort) for f in self.fields}

    def step_vars(self, tag: str) -> dict[str, Z]:
        """The per-step variables (act, out, eff, br, and every action's parameters)."""
        out: dict[str, Z] = {"act": z3.Int(f"act@{tag}"), "out": z3.Int(f"out@{tag}"),
                             "eff": z3.BitVec(f"eff@{tag}", width_of(EFF_SORT)),
                             "br": z3.Int(f"br@{tag}")}
        for ae in self.actions:
            for p in ae.action.params:
                out[f"{ae.action.name}.{p.name}"] = self._var(f"{ae.action.name}.{p.name}@{tag}",
                                                              p.sort)
        return out

    def variables(self) -> list[Z]:
        """Every template variable: state, next state, and one step's."""
        return ([self.s[f.name] for f in self.fields] + [self.n[f.name] for f in self.fields]
                + list(self.template_step().values()))

    def template_step(self) -> dict[str, Z]:
        out: dict[str, Z] = {"act": self.act, "out": self.out, "eff": self.eff, "br": self.br}
        for ae in self.actions:
            for p in ae.action.params:
                out[f"{ae.action.name}.{p.name}"] = ae.params[p.name]
        return out

    def instantiate(self, term: Z, s: Mapping[str, Z], n: Mapping[str, Z] | None = None,
                    st: Mapping[str, Z] | None = None) -> Z:
        """Replace template variables by the given state / next-state / step variables."""
        pairs = [(self.s[k], v) for k, v in s.items()]
        if n is not None:
            pairs += [(self.n[k], v) for k, v in n.items()]
        if st is not None:
            tmpl = self.template_step()
            pairs += [(tmpl[k], v) for k, v in st.items()]
        return z3.substitute(term, *pairs) if pairs else term

    # -- the system -------------------------------------------------------------------------------
    def _encode_action(self, i: int, a: Action) -> ActionEnc:
        sem = a.semantics(self.schema)
        params = {p.name: self._var(f"p.{a.name}.{p.name}", p.sort) for p in a.params}
        env: dict[tuple[str, str], Z] = {("s", f): v for f, v in self.s.items()}
        env.update({("p", k): v for k, v in params.items()})
        # a parameter with one symbolic value (a mapping's offset, which replay binds) enters
        # the terms as that constant, so they fold before the solver sees them
        for p in a.params:
            if (sv := p.symbolic_values()) is not None and len(sv) == 1:
                env[("p", p.name)] = value_term(p.sort, sv[0])
        pdom = []
        for p in a.params:
            if (sv := p.symbolic_values()) is not None:
                pdom.append(z3.Or(*[params[p.name] == value_term(p.sort, v) for v in sv]))
            else:
                pdom.append(domain(p.sort, params[p.name]))
        enabled = translate(sem.enabled, env)
        brs = sem.branches
        conds = [translate(b.rule.cond, env) for b in brs]

        def chain(vals: Sequence[Z]) -> Z:
            out = vals[-1]
            for c, v in zip(reversed(conds[:-1]), reversed(vals[:-1]), strict=True):
                out = z3.If(c, v, out)
            return out

        updates: dict[str, Z] = {}
        for f in self.fields:
            if not any(f.name in b.rule.updates for b in brs):
                updates[f.name] = self.s[f.name]
                continue
            fs = f.sort.expr_sort
            vals = [coerce(translate(fit(b.rule.updates[f.name], fs), env), fs)
                    if f.name in b.rule.updates else self.s[f.name] for b in brs]
            updates[f.name] = chain(vals)
        outs = [coerce(translate(b.rule.value, env), INT) for b in brs]
        effs = []
        for b in brs:
            ef = b.rule.effects
            ee = ef if isinstance(ef, E) else const(int(ef), INT)
            effs.append(coerce(translate(fit(ee, EFF_SORT), env), EFF_SORT))
        return ActionEnc(i, a, sem, params, z3.And(*pdom), enabled, updates, chain(outs),
                         chain(effs), chain([z3.IntVal(k) for k in range(len(brs))]),
                         [b.rule.label for b in brs])

    def dom(self, s: Mapping[str, Z]) -> Z:
        return z3.And(*[domain(f.sort, s[f.name]) for f in self.fields])

    def init(self, s: Mapping[str, Z]) -> Z:
        ch = self.design.init.choices(self.schema)
        return z3.And(*[z3.Or(*[s[f.name] == value_term(f.sort, v) for v in ch[f.name]])
                        for f in self.fields])

    def trans_a(self, a: int, observe: bool = True) -> Z:
        """Trans of action `a` over the templates (s, n, its params, out, eff, br); cached."""
        key = (a, observe)
        if key not in self._ta_cache:
            self._ta_cache[key] = self._at[a].step(self.s, self.n, self.out, self.eff,
                                                   self.br, observe)
        return self._ta_cache[key]

    def trans(self, *, next_in_domain: bool = True,
              guard: Callable[[int], Z] | None = None, observe: bool = True) -> Z:
        """Trans over the templates, in functional form: act selects the action, which must
        be enabled (with parameters in their domains); each next-state field, the outcome,
        the effects and the rule index are an if-then-else over act. `guard(a)` must hold of
        the taken action a (used to ask for a transition violating a property)."""
        key = (next_in_domain, observe)
        if guard is None and key in self._trans_cache:
            return self._trans_cache[key]
        acts = self.actions
        parts = [z3.Or(*[self.act == ae.index for ae in acts])]
        for ae in acts:
            parts.append(z3.Implies(self.act == ae.index, z3.And(ae.enabled, ae.pdom)))
            if guard is not None:
                parts.append(z3.Implies(self.act == ae.index, guard(ae.index)))

        def select(vals: Sequence[Z], default: Z) -> Z:
            out = default
            for ae, v in zip(reversed(acts), reversed(vals), strict=True):
                if not v.eq(default):
                    out = z3.If(self.act == ae.index, v, out)
            return out

        for f in self.fields:
            parts.append(self.n[f.name] == select([ae.updates[f.name] for ae in acts],
                                                  self.s[f.name]))
        if observe:
            parts.append(self.out == select([ae.out for ae in acts], z3.IntVal(0)))
            parts.append(self.eff == select([ae.eff for ae in acts], z3.BitVecVal(0, 8)))
            parts.append(self.br == select([ae.br for ae in acts], z3.IntVal(0)))
        if next_in_domain:
            parts.append(self.dom(self.n))
        out = z3.And(*parts)
        if guard is None:
            self._trans_cache[key] = out
        return out

    def unrolling_trans(self) -> Z:
        """Trans without outcome/effect/rule variables, simplified (cached; the unrolled
        engines evaluate those three from the model when decoding)."""
        if self._unroll is None:
            self._unroll = z3.simplify(self.trans(observe=False))
        return self._unroll

    # -- properties ---------------------------------------------------------------------------
    def state_pred(self, pred: E, s: Mapping[str, Z] | None = None) -> Z:
        env = {("s", f): v for f, v in (s or self.s).items()}
        return coerce(translate(pred, env), BOOL)

    def prop_state(self, prop: Property) -> Z:
        """P(s) of an always/sometimes property, over the template state."""
        return self.state_pred(prop.state_pred(self.schema))

    def prop_action(self, prop: Property, a: int) -> Z:
        """A(s, n, params, out, eff, br) of an action property for action a (templates)."""
        key = (prop.name, a)
        if key not in self._prop_cache:
            ae = self._at[a]
            tv = TransitionView(self.schema, ae.action, ae.sem)
            env: dict[tuple[str, str], Z] = {("s", f): v for f, v in self.s.items()}
            env.update({("n", f): v for f, v in self.n.items()})
            env.update({("p", k): v for k, v in ae.params.items()})
            env.update({("o", "out"): self.out, ("x", "eff"): self.eff, ("b", "br"): self.br})
            self._prop_cache[key] = coerce(translate(prop.pred(tv), env), BOOL)
        return self._prop_cache[key]

    def decode_state(self, model: z3.ModelRef, s: Mapping[str, Z]) -> dict[str, int]:
        """The encoded fields' values (not the replayed ones)."""
        return {f.name: as_int(model, s[f.name]) for f in self.fields}

    def decode_init(self, model: z3.ModelRef, s: Mapping[str, Z]) -> dict[str, int]:
        """An initial state, whole: the replayed fields at their one initial value."""
        ch = self.design.init.choices(self.schema)
        out = self.decode_state(model, s)
        for n in self.replayed:
            (out[n],) = ch[n]
        return out

    def decode_step(self, model: z3.ModelRef, s: Mapping[str, Z], st: Mapping[str, Z]
                    ) -> tuple[int, dict[str, int], int, int, str]:
        """(action index, params, outcome, effects, rule label) of the step taken from state
        `s` with step variables `st`, as the model's encoding evaluates it."""
        a = as_int(model, st["act"])
        ae = self._at[a]
        params = {p.name: as_int(model, st[f"{ae.action.name}.{p.name}"])
                  for p in ae.action.params}
        vals = [as_int(model, self.instantiate(t, s, st=st)) for t in (ae.out, ae.eff, ae.br)]
        return a, params, vals[0], vals[1], ae.labels[vals[2]]


def is_action_kind(prop: Property) -> bool:
    return prop.kind in ("action", "sometimes-action")


def is_sometimes(prop: Property) -> bool:
    return prop.kind in ("sometimes", "sometimes-action")


@dataclass
class Goal:
    """What a search looks for: a bad (or witnessing) state, or a bad (witnessing) transition.

    For always/action properties the goal is the negated property; for sometimes kinds it is
    the predicate itself. `state` is g(s) over the template state; `per_action[a]` is
    g_a(s, n, params, out, eff, br) over action a's templates."""

    prop: Property
    state: Z | None
    per_action: dict[int, Z] | None  # by the design's action index
    enc: Encoder | None = None
    _pre: Z | None = None
    _pre_done: bool = False
    _reach: Z | None = None

    @property
    def on_transition(self) -> bool:
        return self.per_action is not None

    @property
    def pre(self) -> Z | None:
        """A state formula implied by "some transition from s meets the goal" (its
        pre-image, see preimage()); the state goal itself for state goals; None if not
        computable. Computed on first use."""
        if self.per_action is None:
            return self.state
        if not self._pre_done:
            assert self.enc is not None
            self._pre = preimage(self.enc, self)
            self._pre_done = True
        return self._pre

    def reach(self, enc: Encoder) -> Z:
        """The goal from the template state s: g(s), or a transition from s (any next state,
        in the domain or not, as the explicit engine checks before pruning) satisfying g_a."""
        if self.per_action is None:
            return self.state
        if self._reach is None:
            ga = self.per_action
            self._reach = enc.trans(next_in_domain=False, guard=lambda a: ga[a])
        return self._reach

    def avoided_by_step(self, enc: Encoder) -> Z:
        """The taken step (templates) does not satisfy g_act (action goals only)."""
        assert self.per_action is not None
        return z3.And(*[z3.Implies(enc.act == a, z3.Not(g))
                        for a, g in self.per_action.items()])


def goal_for(enc: Encoder, prop: Property) -> Goal:
    want = is_sometimes(prop)
    if is_action_kind(prop):
        gs = {ae.index: enc.prop_action(prop, ae.index) for ae in enc.actions}
        return Goal(prop, None, {a: x if want else z3.Not(x) for a, x in gs.items()}, enc)
    p = enc.prop_state(prop)
    return Goal(prop, p if want else z3.Not(p), None, enc)


def preimage(enc: Encoder, goal: Goal, max_cases: int = 256) -> Z | None:
    """∃ step. a goal transition from s, as a quantifier-free state formula over-approximating
    it (the engines rely on nothing more). Per action: the goal with the next state, outcome,
    effects and rule substituted; dropped if unsatisfiable; parameters of small finite sorts
    (enum, bool, nat(fixed)) eliminated exactly by enumeration; wide ones (words, scope nats)
    over-approximated by z3's qe2 projection conjoined with the conjuncts free of them. Each
    disjunct is checked to follow from the action's goal transitions; None if one fails."""
    assert goal.per_action is not None
    out = []
    for ae in enc.actions:
        body = z3.And(ae.enabled, ae.pdom, goal.per_action[ae.index])
        subs = [(enc.n[f], ae.updates[f]) for f in enc.n]
        subs += [(enc.out, ae.out), (enc.eff, ae.eff), (enc.br, ae.br)]
        body = z3.simplify(z3.substitute(body, *subs))
        if z3.is_false(body):
            continue
        sat = z3.Solver()
        sat.set("timeout", 10000)
        sat.add(enc.dom(enc.s), body)
        if sat.check() == z3.unsat:
            continue
        pre = _project(ae, body, max_cases)
        chk = z3.Solver()
        chk.set("timeout", 10000)
        chk.add(enc.dom(enc.s), body, z3.Not(pre))
        if chk.check() != z3.unsat:
            return None
        out.append(pre)
    return z3.simplify(z3.Or(*out)) if out else z3.BoolVal(False)


def _project(ae: ActionEnc, body: Z, max_cases: int) -> Z:
    """∃ params. body, over-approximated as described in preimage()."""
    fin, doms = [], []
    for p in ae.action.params:
        if (sv := p.symbolic_values()) is not None:
            d: Sequence[int] = sv
        elif p.sort.kind == "enum":
            d = range(len(p.sort.values))
        elif p.sort.kind == "bool":
            d = (0, 1)
        elif p.sort.kind == "nat" and p.sort.fixed is not None:
            d = range(p.sort.fixed + 1)
        else:
            continue
        fin.append(p)
        doms.append(d)
    if math.prod(len(d) for d in doms) > max_cases:
        fin, doms = [], []
    wide = [ae.params[p.name] for p in ae.action.params if p not in fin]
    cases = []
    for combo in itertools.product(*doms):
        pairs = [(ae.params[p.name], value_term(p.sort, v))
                 for p, v in zip(fin, combo, strict=True)]
        c = z3.simplify(z3.substitute(body, *pairs)) if pairs else body
        if not z3.is_false(c):
            cases.append(c)
    if not wide:
        return z3.Or(*cases) if cases else z3.BoolVal(False)
    wid = {w.get_id() for w in wide}
    free = []
    for c in cases:
        conj = c.children() if z3.is_and(c) else [c]
        free.append(z3.And(*[x for x in conj
                             if not any(v.get_id() in wid for v in _consts(x))]))
    approx = [z3.Or(*free)]
    # qe2 in a fresh context, with a time limit: in the context of a long run it was
    # heavy-tailed (177 s for v5-flags inaccessible-size-fixed-once-set after the other
    # properties' queries; well under a second alone). Without its conjunct the projection
    # is coarser, and still an over-approximation (checked by preimage()).
    home, ctx = body.ctx, z3.Context()
    g = z3.Goal(ctx=ctx)
    g.add(z3.Exists([w.translate(ctx) for w in wide], z3.Or(*cases).translate(ctx)))
    try:
        with watching(ctx):
            res = z3.TryFor(z3.Then("simplify", "qe2", "simplify", ctx=ctx), QE_MS, ctx=ctx)(g)
        e = z3.Or(*[x.as_expr() for x in res]) if len(res) != 1 else res[0].as_expr()
        if _quantifier_free(e):
            approx.append(e.translate(home))
    except z3.Z3Exception:
        pass
    return z3.simplify(z3.And(*approx))


#: milliseconds qe2 may take for one action's pre-image projection (_project)
QE_MS = 10_000


def _quantifier_free(e: Z) -> bool:
    seen: set[int] = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_quantifier(x):
            return False
        if z3.is_app(x):
            stack.extend(x.children())
    return True


def _consts(e: Z) -> list[Z]:
    """The uninterpreted constants of a term."""
    seen: set[int] = set()
    out: list[Z] = []
    stack = [e]
    while stack:
        x = stack.pop()
        if x.get_id() in seen:
            continue
        seen.add(x.get_id())
        if z3.is_const(x) and x.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.append(x)
        elif z3.is_app(x):
            stack.extend(x.children())
    return out


def concrete_step(enc: Encoder, a: int, state: Mapping[str, int], params: Mapping[str, int]
                  ) -> tuple[bool, int, int, str, dict[str, int]]:
    """Evaluate action a's encoding on concrete values (a differential check against the
    explicit interpreter): (enabled, outcome, effects, rule label, next state)."""
    ae = enc.action_at(a)
    pairs = [(enc.s[f.name], value_term(f.sort, state[f.name])) for f in enc.fields]
    pairs += [(ae.params[p.name], value_term(p.sort, params[p.name]))
              for p in ae.action.params]

    def ev(t: Z) -> Z:
        return z3.simplify(z3.substitute(t, *pairs))

    def num(t: Z) -> int:
        v = ev(t)
        if z3.is_true(v) or z3.is_false(v):
            return int(z3.is_true(v))
        return int(v.as_long())

    en = z3.is_true(ev(z3.And(ae.enabled, ae.pdom)))
    nxt = {f: num(u) for f, u in ae.updates.items()}
    return en, num(ae.out), num(ae.eff), ae.labels[num(ae.br)], nxt
