//! Reading `#[phase(...)]`, `#[measures(...)]` and the function into a model.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, FnArg, Ident, ItemFn, LitInt, LitStr, Token, Type};

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(e) => e.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn into_compile_errors(self) -> TokenStream {
        self.0.map(|e| e.into_compile_error()).unwrap_or_default()
    }
}

/// Options of `#[phase(...)]`.
#[derive(Default)]
pub(crate) struct PhaseArgs {
    pub(crate) name: Option<LitStr>,
    pub(crate) repeat_limit: Option<LitInt>,
    /// The timeout, in whole milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) repeat_on_measurement_fail: bool,
    pub(crate) stop_on_measurement_fail: bool,
    /// A path to a `fn() -> bool`.
    pub(crate) run_if: Option<syn::Path>,
}

impl PhaseArgs {
    pub(crate) fn parse(tokens: TokenStream, errors: &mut Errors) -> PhaseArgs {
        let mut args = PhaseArgs::default();
        let parsed =
            syn::parse::Parser::parse2(Punctuated::<PhaseArg, Token![,]>::parse_terminated, tokens);
        let list = match parsed {
            Ok(list) => list,
            Err(e) => {
                errors.push(e);
                return args;
            }
        };
        for arg in list {
            match arg.key.to_string().as_str() {
                "name" => match syn::parse2::<LitStr>(arg.value.clone()) {
                    Ok(lit) if !lit.value().trim().is_empty() => args.name = Some(lit),
                    Ok(lit) => {
                        errors.push(syn::Error::new(lit.span(), "a phase name can't be empty"))
                    }
                    Err(_) => errors.push(syn::Error::new(
                        arg.value.span(),
                        "`name` takes a string, e.g. name = \"Power on\"",
                    )),
                },
                "repeat_limit" => match syn::parse2::<LitInt>(arg.value.clone()) {
                    Ok(lit) if lit.base10_parse::<u32>().is_ok_and(|n| n >= 1) => {
                        args.repeat_limit = Some(lit)
                    }
                    _ => errors.push(syn::Error::new(
                        arg.value.span(),
                        "`repeat_limit` takes a whole number of attempts, at least 1",
                    )),
                },
                "timeout_s" => {
                    let seconds = match syn::parse2::<syn::Lit>(arg.value.clone()) {
                        Ok(syn::Lit::Float(f)) => f.base10_parse::<f64>().ok(),
                        Ok(syn::Lit::Int(i)) => i.base10_parse::<u32>().ok().map(f64::from),
                        _ => None,
                    };
                    match seconds.filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9) {
                        Some(s) => args.timeout_ms = Some((s * 1000.0).round().max(1.0) as u64),
                        None => errors.push(syn::Error::new(
                            arg.value.span(),
                            "`timeout_s` takes a number of seconds greater than 0, e.g. timeout_s = 0.5",
                        )),
                    }
                }
                "run_if" => match syn::parse2::<syn::Path>(arg.value.clone()) {
                    Ok(path) => args.run_if = Some(path),
                    Err(_) => errors.push(syn::Error::new(
                        arg.value.span(),
                        "`run_if` takes the name of a `fn() -> bool`, e.g. run_if = has_wifi",
                    )),
                },
                flag @ ("repeat_on_measurement_fail" | "stop_on_measurement_fail") => {
                    match syn::parse2::<syn::LitBool>(arg.value.clone()) {
                        Ok(b) if flag == "repeat_on_measurement_fail" => args.repeat_on_measurement_fail = b.value,
                        Ok(b) => args.stop_on_measurement_fail = b.value,
                        Err(_) => errors.push(syn::Error::new(
                            arg.value.span(),
                            format!("`{flag}` is a flag: write `{flag}` or `{flag} = true`"),
                        )),
                    }
                }
                other => errors.push(syn::Error::new(
                    arg.key.span(),
                    format!(
                        "unknown phase option `{other}`; the options are `name`, `repeat_limit`, `timeout_s`, `run_if`, `repeat_on_measurement_fail` and `stop_on_measurement_fail`"
                    ),
                )),
            }
        }
        args
    }
}

struct PhaseArg {
    key: Ident,
    value: TokenStream,
}

impl Parse for PhaseArg {
    /// `key = value`, or a bare `key` for a flag (which means `key = true`).
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key: Ident = input.parse()?;
        if !input.peek(Token![=]) {
            return Ok(PhaseArg {
                key,
                value: quote::quote!(true),
            });
        }
        input.parse::<Token![=]>()?;
        let value: Expr = input.parse()?;
        Ok(PhaseArg {
            key,
            value: quote::ToTokens::into_token_stream(value),
        })
    }
}

/// One `name: Kind = spec` of `#[measures(...)]`.
pub(crate) struct MeasureDecl {
    pub(crate) name: Ident,
    pub(crate) kind: Type,
    pub(crate) spec: Option<Expr>,
}

impl Parse for MeasureDecl {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        if !input.peek(Token![:]) {
            return Err(syn::Error::new(
                name.span(),
                format!(
                    "give `{name}` a kind: `{name}: f64`, `String`, `bool`, `Json`, `Sweep<N>` or `Si<unit>`"
                ),
            ));
        }
        input.parse::<Token![:]>()?;
        let kind: Type = input.parse()?;
        let spec = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(MeasureDecl { name, kind, spec })
    }
}

/// Parses the arguments of one `#[measures(...)]`, appending to `out`.
///
/// Each declaration is read on its own (split at top-level commas), so one bad declaration
/// gives one error and the others still exist.
pub(crate) fn parse_measures(tokens: TokenStream, out: &mut Vec<MeasureDecl>, errors: &mut Errors) {
    for chunk in split_top_level_commas(tokens) {
        match syn::parse2::<MeasureDecl>(chunk) {
            Ok(decl) => {
                if let Some(first) = out.iter().find(|d| d.name == decl.name) {
                    let mut e = syn::Error::new(
                        decl.name.span(),
                        format!(
                            "measurement `{}` is declared twice in this phase",
                            decl.name
                        ),
                    );
                    e.combine(syn::Error::new(first.name.span(), "first declared here"));
                    errors.push(e);
                } else {
                    out.push(decl);
                }
            }
            Err(e) => errors.push(e),
        }
    }
}

fn split_top_level_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut chunks = vec![TokenStream::new()];
    for tree in tokens {
        match &tree {
            proc_macro2::TokenTree::Punct(p) if p.as_char() == ',' => {
                chunks.push(TokenStream::new())
            }
            _ => {
                if let Some(last) = chunks.last_mut() {
                    last.extend(std::iter::once(tree));
                }
            }
        }
    }
    chunks.retain(|c| !c.is_empty());
    chunks
}

/// What a phase function's argument is.
pub(crate) enum ArgRole {
    Context,
    Measurements,
    /// A plug, by its type (`PowerSupply`, `dyn Supply`), lent mutably or not.
    Plug {
        ty: Box<Type>,
        mutable: bool,
    },
}

/// The function and its attributes.
pub(crate) struct PhaseFn {
    pub(crate) item: ItemFn,
    pub(crate) args: PhaseArgs,
    pub(crate) measures: Vec<MeasureDecl>,
    /// The role of each argument, `None` where it could not be understood.
    pub(crate) roles: Vec<Option<ArgRole>>,
}

/// Whether `attr` is `#[measures(...)]` (or a path ending in `measures`).
pub(crate) fn is_attr(attr: &Attribute, name: &str) -> bool {
    attr.path().segments.last().is_some_and(|s| s.ident == name)
}

impl PhaseFn {
    /// Reads the function, taking `#[measures]` (and, when `#[measures]` came first, `#[phase]`)
    /// out of its attributes.
    pub(crate) fn parse(
        args: TokenStream,
        mut item: ItemFn,
        first_measures: Option<TokenStream>,
        errors: &mut Errors,
    ) -> PhaseFn {
        let mut measures = Vec::new();
        let mut phase_args = None;
        if let Some(tokens) = first_measures {
            parse_measures(tokens, &mut measures, errors);
        }
        let mut kept = Vec::new();
        for attr in std::mem::take(&mut item.attrs) {
            if is_attr(&attr, "measures") {
                match &attr.meta {
                    syn::Meta::List(list) => {
                        parse_measures(list.tokens.clone(), &mut measures, errors)
                    }
                    other => errors.push(syn::Error::new(
                        other.span(),
                        "write `#[measures(name: Kind = spec, …)]`",
                    )),
                }
            } else if is_attr(&attr, "phase") {
                let tokens = match &attr.meta {
                    syn::Meta::List(list) => list.tokens.clone(),
                    _ => TokenStream::new(),
                };
                phase_args = Some(PhaseArgs::parse(tokens, errors));
            } else {
                kept.push(attr);
            }
        }
        item.attrs = kept;
        let args = match phase_args {
            Some(a) => a,
            None => PhaseArgs::parse(args, errors),
        };
        let roles = check_signature(&item, !measures.is_empty(), errors);
        PhaseFn {
            item,
            args,
            measures,
            roles,
        }
    }
}

fn check_signature(item: &ItemFn, has_measures: bool, errors: &mut Errors) -> Vec<Option<ArgRole>> {
    let sig = &item.sig;
    let name = &sig.ident;
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new(
            a.span(),
            "a phase can't be async; it runs on the test's thread",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "a phase can't be generic",
        ));
    }
    let mut seen_context = false;
    let mut seen_measurements = false;
    let mut measurements_taken = false;
    let roles = sig
        .inputs
        .iter()
        .map(|input| {
            let FnArg::Typed(arg) = input else {
                errors.push(syn::Error::new(input.span(), "a phase is a free function; it can't take `self`"));
                return None;
            };
            let (Type::Reference(reference), _) = (&*arg.ty, ()) else {
                errors.push(unknown_arg(&arg.ty, name));
                return None;
            };
            let Type::Path(path) = &*reference.elem else {
                if let Type::TraitObject(_) = &*reference.elem {
                    return Some(ArgRole::Plug { ty: reference.elem.clone(), mutable: reference.mutability.is_some() });
                }
                errors.push(unknown_arg(&arg.ty, name));
                return None;
            };
            let segments = &path.path.segments;
            let last = segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
            match last.as_str() {
                "PhaseContext" if !seen_context => {
                    seen_context = true;
                    Some(ArgRole::Context)
                }
                "Measurements" => {
                    seen_measurements = true;
                    let owner = segments.iter().rev().nth(1).map(|s| &s.ident);
                    if owner != Some(name) {
                        let shown = owner.map_or_else(|| "Measurements".to_owned(), |o| format!("{o}::Measurements"));
                        errors.push(syn::Error::new(
                            path.span(),
                            format!("phase `{name}` sets its own measurements: take `&mut {name}::Measurements`, not `{shown}`"),
                        ));
                        return None;
                    }
                    if reference.mutability.is_none() {
                        errors.push(syn::Error::new(arg.ty.span(), format!("take `&mut {name}::Measurements` to set them")));
                        return None;
                    }
                    if measurements_taken {
                        errors.push(syn::Error::new(arg.ty.span(), "the measurements are taken twice"));
                        return None;
                    }
                    measurements_taken = true;
                    Some(ArgRole::Measurements)
                }
                _ => Some(ArgRole::Plug { ty: reference.elem.clone(), mutable: reference.mutability.is_some() }),
            }
        })
        .collect();
    if has_measures && !seen_measurements {
        errors.push(syn::Error::new(
            sig.inputs.span().join(sig.ident.span()).unwrap_or_else(|| sig.ident.span()),
            format!("phase `{name}` declares measurements but can't set them: add an argument `m: &mut {name}::Measurements`"),
        ));
    }
    roles
}

fn unknown_arg(ty: &Type, name: &Ident) -> syn::Error {
    syn::Error::new(
        ty.span(),
        format!(
            "a phase takes references: `&mut PhaseContext`, `&mut {name}::Measurements`, and plugs as `&mut PlugType`"
        ),
    )
}

/// A span to report errors about the whole attribute at.
pub(crate) fn call_site() -> Span {
    Span::call_site()
}
