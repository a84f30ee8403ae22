//! Writing the code of a phase from its model.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ItemFn, Type};

use crate::parse::{ArgRole, Errors, PhaseFn, call_site, is_attr};

/// `#[phase]`, possibly after `#[measures]` (whose tokens are then `first_measures`). `krate`
/// is the path of tofu-core as the user's crate sees it (`::tofu_core`, or `::tofu::__core`
/// through the `tofu` crate).
pub(crate) fn phase(
    krate: &TokenStream,
    args: TokenStream,
    item: TokenStream,
    first_measures: Option<TokenStream>,
) -> TokenStream {
    let mut errors = Errors::default();
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            errors.push(syn::Error::new(item.span(), "#[phase] goes on a function"));
            let errors = errors.into_compile_errors();
            return quote!(#errors #item);
        }
    };
    let model = PhaseFn::parse(args, item, first_measures, &mut errors);
    let code = expand(&model, krate);
    let errors = errors.into_compile_errors();
    quote!(#errors #code)
}

/// `#[measures]` written above `#[phase]`: hand everything to `#[phase]`.
pub(crate) fn measures_first(
    krate: &TokenStream,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) if f.attrs.iter().any(|a| is_attr(a, "phase")) => {
            phase(krate, TokenStream::new(), item, Some(args))
        }
        Ok(mut f) => {
            f.attrs.retain(|a| !is_attr(a, "measures"));
            let e = syn::Error::new(
                call_site(),
                "#[measures] goes with #[phase] on the same function",
            )
            .into_compile_error();
            quote!(#e #f)
        }
        Err(_) => {
            let e = syn::Error::new(
                item.span(),
                "#[measures] goes on a function marked #[phase]",
            )
            .into_compile_error();
            quote!(#e #item)
        }
    }
}

fn expand(model: &PhaseFn, krate: &TokenStream) -> TokenStream {
    let item = &model.item;
    let name = &item.sig.ident;
    let vis = &item.vis;
    let body_fn = format_ident!("__tofu_phase_body_{}", name);
    let def_static = format_ident!("__TOFU_PHASE_DEF_{}", name);
    let function_name = name.to_string();

    let doc_lines: Vec<String> = item
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let doc = if doc_lines.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        let text = doc_lines.join("\n");
        quote!(::core::option::Option::Some(#text))
    };
    let display_name = match &model.args.name {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };
    let run_if_name = match &model.args.run_if {
        Some(path) => {
            let text = quote!(#path).to_string().replace(' ', "");
            quote!(::core::option::Option::Some(#text))
        }
        None => quote!(::core::option::Option::None),
    };
    let run_if = match &model.args.run_if {
        Some(path) => {
            quote_spanned!(path.span()=> ::core::option::Option::Some(#path as fn() -> bool))
        }
        None => quote!(::core::option::Option::None),
    };
    let repeat_on_fail = model.args.repeat_on_measurement_fail;
    let stop_on_fail = model.args.stop_on_measurement_fail;
    let timeout = match model.args.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
        None => quote!(::core::option::Option::None),
    };
    let repeat_limit = match &model.args.repeat_limit {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    };

    // The measurements struct: one typed handle per declared measurement.
    let fields = model.measures.iter().map(|m| {
        let (field, kind) = (&m.name, &m.kind);
        quote_spanned!(m.kind.span()=> pub #field: #krate::__private::Measurement<'a, #kind>)
    });
    let declarations = model.measures.iter().map(|m| {
        let (field, kind) = (&m.name, &m.kind);
        let text = field.to_string();
        let spec = match &m.spec {
            Some(expr) => quote!({
                #[allow(unused_imports)]
                use #krate::declare::*;
                #expr
            }),
            None => quote!(#krate::__private::__unspecified()),
        };
        quote_spanned!(kind_span(kind)=> #krate::__private::__declare::<#kind, _>(#text, #spec))
    });
    let unit_checks = model
        .measures
        .iter()
        .filter_map(|m| si_units_check(m, krate));
    let slot_names: Vec<_> = model
        .measures
        .iter()
        .map(|m| format_ident!("__slot_{}", m.name))
        .collect();
    let field_names: Vec<_> = model.measures.iter().map(|m| &m.name).collect();
    // The lifetime needs a field of its own only when there is no measurement to carry it
    // (so that compile errors' "available fields" never list an internal one otherwise).
    let (lifetime_field, lifetime_init) = if field_names.is_empty() {
        (
            quote!(#[doc(hidden)] pub __tofu_lifetime: ::core::marker::PhantomData<&'a mut ()>,),
            quote!(__tofu_lifetime: ::core::marker::PhantomData,),
        )
    } else {
        (quote!(), quote!())
    };
    let struct_doc =
        format!("The measurements of phase `{name}`, as declared in its `#[measures]`.");

    // The call of the user's function, arguments in the order written.
    let all_understood = model.roles.iter().all(Option::is_some);
    let plug_types: Vec<&Type> = model
        .roles
        .iter()
        .filter_map(|role| match role {
            Some(ArgRole::Plug { ty, .. }) => Some(&**ty),
            _ => None,
        })
        .collect();
    let plug_vars: Vec<_> = (0..plug_types.len())
        .map(|i| format_ident!("__tofu_plug_{}", i))
        .collect();
    let mut plug_index = 0;
    let call_args: Vec<TokenStream> = model
        .roles
        .iter()
        .map(|role| match role {
            Some(ArgRole::Context) => quote!(&mut *__tofu_ctx),
            Some(ArgRole::Measurements) => quote!(&mut __tofu_measurements),
            Some(ArgRole::Plug { mutable, .. }) => {
                let var = &plug_vars[plug_index];
                plug_index += 1;
                if *mutable {
                    quote!(&mut *#var)
                } else {
                    quote!(&*#var)
                }
            }
            None => quote!(),
        })
        .collect();
    let call = if all_understood {
        quote!(#krate::__private::IntoPhaseReturn::into_phase_return(#body_fn(#(#call_args),*)))
    } else {
        quote!(#krate::__private::PhaseReturn::Result(
            #krate::PhaseResult::Stop
        ))
    };

    // The user's function, renamed, with `X::Measurements` given its lifetime.
    let mut body = item.clone();
    body.sig.ident = body_fn.clone();
    body.vis = syn::Visibility::Inherited;
    body.attrs.retain(|a| !a.path().is_ident("doc"));
    for input in &mut body.sig.inputs {
        if let syn::FnArg::Typed(arg) = input
            && let Type::Reference(r) = &mut *arg.ty
            && let Type::Path(p) = &mut *r.elem
            && let Some(last) = p.path.segments.last_mut()
            && last.ident == "Measurements"
            && last.arguments.is_empty()
        {
            last.arguments = syn::PathArguments::AngleBracketed(syn::parse_quote!(<'_>));
        }
    }
    let docs = item.attrs.iter().filter(|a| a.path().is_ident("doc"));

    quote! {
        #[doc = #struct_doc]
        #[allow(non_snake_case)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;

            #[doc = #struct_doc]
            #[derive(Debug)]
            #[allow(dead_code)]
            pub struct Measurements<'a> {
                #(#[allow(missing_docs)] #fields,)*
                #lifetime_field
            }
        }

        #[allow(clippy::needless_pass_by_ref_mut, clippy::unnecessary_wraps)]
        #body

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #def_static: #krate::__private::PhaseDef = {
            fn __tofu_measurements() -> ::std::vec::Vec<#krate::declare::Declared> {
                ::std::vec![#(#declarations),*]
            }
            fn __tofu_plugs() -> #krate::__private::PlugNeeds {
                ::std::vec![#(#krate::__private::__need::<#plug_types>()),*]
            }
            #[allow(unused_variables, unused_mut)]
            fn __tofu_run(
                __tofu_ctx: &mut #krate::PhaseContext,
                __tofu_slots: &mut [#krate::__private::Slot],
                __tofu_plugs: &mut #krate::__private::PlugSet<'_>,
            ) -> #krate::__private::PhaseReturn {
                #(
                    let #plug_vars = match __tofu_plugs.__take::<#plug_types>() {
                        ::core::result::Result::Ok(plug) => plug,
                        ::core::result::Result::Err(missing) => {
                            return #krate::__private::PhaseReturn::Error {
                                type_name: "MissingPlug".into(),
                                message: missing.to_string(),
                            };
                        }
                    };
                )*
                let [#(#slot_names),*] = __tofu_slots else {
                    return #krate::__private::PhaseReturn::Error {
                        type_name: "InternalError".into(),
                        message: "measurement slots do not match the declarations".into(),
                    };
                };
                let mut __tofu_measurements = #name::Measurements {
                    #(#field_names: #krate::__private::Measurement::__bind(#slot_names),)*
                    #lifetime_init
                };
                #call
            }
            #krate::__private::PhaseDef {
                function: #function_name,
                module_path: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
                doc: #doc,
                options: #krate::__private::PhaseOptions::__new(#display_name, #repeat_limit, #timeout)
                    .__flags(#repeat_on_fail, #stop_on_fail)
                    .__run_if(#run_if, #run_if_name),
                measurements: __tofu_measurements,
                plugs: __tofu_plugs,
                run: __tofu_run,
            }
        };

        #(#unit_checks)*

        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #name: #krate::Phase = #krate::Phase::__new(&#def_static);

        #krate::__private::inventory::submit! {
            #krate::__private::Registered(#krate::Phase::__new(&#def_static))
        }
    }
}

fn kind_span(kind: &Type) -> proc_macro2::Span {
    kind.span()
}

/// For a measurement of kind `Si<unit>` whose spec gives `.units(UNIT)`: a compile-time check
/// that `UNIT` is the kind's own unit (`Si<volt>` with `.units(AMPERE)` doesn't compile), at
/// the user's `UNIT`. Only for a unit named by a path (a constant); others are checked when
/// the test runs.
fn si_units_check(m: &crate::parse::MeasureDecl, krate: &TokenStream) -> Option<TokenStream> {
    let Type::Path(kind_path) = &m.kind else {
        return None;
    };
    if kind_path.path.segments.last()?.ident != "Si" {
        return None;
    }
    let given = units_argument(m.spec.as_ref()?)?;
    let kind = &m.kind;
    let squash = |s: String| s.replace(' ', "");
    let message = format!(
        "the unit comes from the kind `{}`; remove `.units({})`",
        squash(quote!(#kind).to_string()),
        squash(quote!(#given).to_string())
    );
    Some(quote_spanned! {given.span()=>
        const _: () = {
            #[allow(unused_imports)]
            use #krate::declare::*;
            const GIVEN: &#krate::Unit = &#given;
            const KIND: &#krate::Unit = &<#kind as #krate::__private::__SiKind>::UNIT;
            ::core::assert!(#krate::__private::__same_unit(KIND, GIVEN), #message);
        };
    })
}

/// The path given to `.units(…)` (or `units(…)`) in a spec's chain of calls.
fn units_argument(spec: &syn::Expr) -> Option<&syn::Expr> {
    match spec {
        syn::Expr::MethodCall(call) => {
            if call.method == "units"
                && call.args.len() == 1
                && matches!(call.args.first(), Some(syn::Expr::Path(_)))
            {
                return call.args.first();
            }
            units_argument(&call.receiver)
        }
        syn::Expr::Call(call) => match &*call.func {
            syn::Expr::Path(f)
                if f.path.is_ident("units")
                    && call.args.len() == 1
                    && matches!(call.args.first(), Some(syn::Expr::Path(_))) =>
            {
                call.args.first()
            }
            _ => None,
        },
        syn::Expr::Paren(inner) => units_argument(&inner.expr),
        _ => None,
    }
}
