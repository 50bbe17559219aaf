//! Attribute macros behind `weir-sdk`. Each leaves the user's function (or
//! impl) as written — so it can be unit-tested natively — and adds a hidden
//! module with the component bindings for one Weir world and the export glue.
//!
//! The bindings are generated in the user's crate, from the WIT embedded
//! here, so a component describes exactly the one world it implements.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{FnArg, ItemFn, ItemImpl, ReturnType, Type};

const WIT: &str = include_str!("../../../../wit/weir.wit");
const SDK_ID: &str = concat!("weir-sdk-rust ", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Copy)]
enum FnKind {
    Filter,
    Map,
    MapValue,
    FlatMap,
    Rekey,
    Route,
    Join,
}

impl FnKind {
    fn attr(self) -> &'static str {
        match self {
            FnKind::Filter => "filter",
            FnKind::Map => "map",
            FnKind::MapValue => "map_value",
            FnKind::FlatMap => "flat_map",
            FnKind::Rekey => "rekey",
            FnKind::Route => "route",
            FnKind::Join => "joiner",
        }
    }

    /// The argument the function takes, as a parameter.
    fn argument(self) -> &'static str {
        match self {
            FnKind::Join => "pair: &Pair",
            FnKind::MapValue => "event: &Event, out: &mut ValueOut",
            _ => "event: &Event",
        }
    }

    fn returns(self) -> &'static str {
        match self {
            FnKind::Filter => "`bool` or `Result<bool, Failure>`",
            FnKind::Map => "`Output` (or `Option<Output>`, or a `Result` of one with `Failure`)",
            FnKind::MapValue => "nothing, or `Result<(), Failure>`",
            FnKind::FlatMap => "`Vec<Output>` (or a `Result` of it with `Failure`)",
            FnKind::Rekey => "the new key: `Vec<u8>`, `String`, `&str` or an `Option` of one",
            FnKind::Route => "the route name: `&str` or `String`",
            FnKind::Join => "`Output`, `Option<Output>` or `Vec<Output>` (or a `Result` of one with `Failure`)",
        }
    }
}

/// Keeps an event when the function returns `true`:
/// `#[weir_sdk::filter] fn f(event: &Event) -> bool`.
#[proc_macro_attribute]
pub fn filter(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::Filter, attr, item)
}

/// One output per event: `#[weir_sdk::map] fn f(event: &Event) -> Output`.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::Map, attr, item)
}

/// The event with a new value, which the function writes straight into the
/// results the host reads (no allocation, one copy):
/// `#[weir_sdk::map_value] fn f(event: &Event, out: &mut ValueOut)`. Key,
/// headers and timestamp stay the event's; a tombstone passes unchanged,
/// without a call. The fastest kind of map.
#[proc_macro_attribute]
pub fn map_value(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::MapValue, attr, item)
}

/// Zero or more outputs per event:
/// `#[weir_sdk::flat_map] fn f(event: &Event) -> Vec<Output>`.
#[proc_macro_attribute]
pub fn flat_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::FlatMap, attr, item)
}

/// The event with a new key: `#[weir_sdk::rekey] fn f(event: &Event) -> Vec<u8>`.
#[proc_macro_attribute]
pub fn rekey(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::Rekey, attr, item)
}

/// The event sent to a named route: `#[weir_sdk::route] fn f(event: &Event) -> &str`.
#[proc_macro_attribute]
pub fn route(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::Route, attr, item)
}

/// Combines the two sides of a join:
/// `#[weir_sdk::joiner] fn f(pair: &Pair) -> Output`. An output without a
/// key gets the pair's key; without a timestamp, the pair's.
#[proc_macro_attribute]
pub fn joiner(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand_fn(FnKind::Join, attr, item)
}

/// Exports an aggregator: `#[weir_sdk::aggregator] impl Aggregate for Count { … }`;
/// `#[weir_sdk::aggregator(migrate)]` also exports `migrate` from `impl Migrate`,
/// `#[weir_sdk::aggregator(subtract)]` `subtract` from `impl Subtract`, and
/// `#[weir_sdk::aggregator(migrate, subtract)]` both.
#[proc_macro_attribute]
pub fn aggregator(attr: TokenStream, item: TokenStream) -> TokenStream {
    let Extras { migrate, subtract } = match extras(attr) {
        Ok(extras) => extras,
        Err(e) => {
            // Keep the impl so the only error is ours.
            let (item, e) = (TokenStream2::from(item), e.to_compile_error());
            return quote!(#item #e).into();
        }
    };
    let item_impl = match syn::parse::<ItemImpl>(item.clone()) {
        Ok(i) => i,
        Err(_) => {
            let span = TokenStream2::from(item)
                .into_iter()
                .next()
                .map_or(Span::call_site(), |t| t.span());
            return error(
                span,
                "#[weir_sdk::aggregator] goes on `impl Aggregate for YourType { … }`",
            );
        }
    };
    let is_aggregate = item_impl
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|s| s.ident == "Aggregate");
    if !is_aggregate {
        return error(
            item_impl.impl_token.span,
            "#[weir_sdk::aggregator] goes on `impl Aggregate for YourType { … }`",
        );
    }
    if !item_impl.generics.params.is_empty() {
        return error(item_impl.generics.span(), "an exported aggregator cannot be generic");
    }
    let ty = &item_impl.self_ty;
    let world = match (migrate, subtract) {
        (false, false) => "aggregate",
        (true, false) => "aggregate-with-migrate",
        (false, true) => "aggregate-with-subtract",
        (true, true) => "aggregate-with-migrate-and-subtract",
    };
    let migrate_impl = migrate.then(|| {
        quote! {
            impl exports::weir::stream::migrator::Guest for Operator {
                fn migrate(
                    previous: ::std::string::String,
                    key: ::std::option::Option<::std::vec::Vec<u8>>,
                    acc: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, exports::weir::stream::migrator::Failure> {
                    ::weir_sdk::__private::migrate::<#ty>(&previous, key.as_deref(), &acc).map_err(|f| {
                        exports::weir::stream::migrator::Failure { code: f.code, message: f.message }
                    })
                }
            }
        }
    });
    let subtract_impl = subtract.then(|| {
        quote! {
            impl exports::weir::stream::subtractor::Guest for Operator {
                fn subtract(groups: ::std::vec::Vec<agg::Group>) -> ::std::vec::Vec<agg::Folded> {
                    fold_groups(groups, ::weir_sdk::__private::subtract::<#ty>)
                }
            }
        }
    });
    let bindings = bindings(world);
    let migrate_check = migrate.then(|| {
        quote! {
            // `migrate` needs `impl Migrate`, checked on every target.
            const _: fn() = || {
                fn must_implement_migrate<T: ::weir_sdk::Migrate>() {}
                must_implement_migrate::<#ty>();
            };
        }
    });
    let subtract_check = subtract.then(|| {
        quote! {
            // `subtract` needs `impl Subtract`, checked on every target.
            const _: fn() = || {
                fn must_implement_subtract<T: ::weir_sdk::Subtract>() {}
                must_implement_subtract::<#ty>();
            };
        }
    });
    quote! {
        #item_impl

        #migrate_check

        #subtract_check

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(unused_imports)]
        mod __weir_operator {
            use super::*;
            #bindings
            use exports::weir::stream::aggregator as agg;

            struct Operator;

            /// Runs `fold` (`add` or `subtract`) over each group.
            fn fold_groups(
                groups: ::std::vec::Vec<agg::Group>,
                fold: fn(
                    ::std::option::Option<&[u8]>,
                    ::std::option::Option<&[u8]>,
                    &[u8],
                ) -> (::std::vec::Vec<u8>, ::std::vec::Vec<(u32, ::weir_sdk::Failure)>),
            ) -> ::std::vec::Vec<agg::Folded> {
                groups
                    .into_iter()
                    .map(|g| {
                        let (acc, failures) = fold(g.key.as_deref(), g.acc.as_deref(), &g.events);
                        agg::Folded {
                            acc,
                            failures: failures
                                .into_iter()
                                .map(|(i, f)| (i, agg::Failure { code: f.code, message: f.message }))
                                .collect(),
                        }
                    })
                    .collect()
            }

            impl agg::Guest for Operator {
                fn add(groups: ::std::vec::Vec<agg::Group>) -> ::std::vec::Vec<agg::Folded> {
                    fold_groups(groups, ::weir_sdk::__private::fold::<#ty>)
                }

                fn merge(
                    key: ::std::option::Option<::std::vec::Vec<u8>>,
                    a: ::std::vec::Vec<u8>,
                    b: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<::std::vec::Vec<u8>, agg::Failure> {
                    ::weir_sdk::__private::merge::<#ty>(key.as_deref(), &a, &b)
                        .map_err(|f| agg::Failure { code: f.code, message: f.message })
                }

                fn emit(requests: ::std::vec::Vec<agg::EmitRequest>) -> ::std::vec::Vec<u8> {
                    ::weir_sdk::__private::emit::<#ty>(requests.iter().map(|r| {
                        (
                            r.key.as_deref(),
                            r.window.map(|w| ::weir_sdk::Window { start: w.start, end: w.end }),
                            r.acc.as_slice(),
                        )
                    }))
                }
            }

            #migrate_impl

            #subtract_impl

            export!(Operator);
        }
    }
    .into()
}

/// The optional interfaces an aggregator exports besides `aggregator`.
#[derive(Default)]
struct Extras {
    migrate: bool,
    subtract: bool,
}

/// Parses `#[weir_sdk::aggregator(…)]`'s arguments: `migrate`, `subtract`,
/// or both, comma-separated, each at most once. An error points at the first
/// token that is none of these.
fn extras(attr: TokenStream) -> syn::Result<Extras> {
    const USAGE: &str = "#[weir_sdk::aggregator] takes no argument, `migrate`, `subtract` or `migrate, subtract`";
    let mut extras = Extras::default();
    let mut tokens = TokenStream2::from(attr).into_iter();
    while let Some(token) = tokens.next() {
        let proc_macro2::TokenTree::Ident(ident) = &token else {
            return Err(syn::Error::new(token.span(), format!("{USAGE}, not `{token}`")));
        };
        let seen = match ident.to_string().as_str() {
            "migrate" => &mut extras.migrate,
            "subtract" => &mut extras.subtract,
            other => return Err(syn::Error::new(ident.span(), format!("{USAGE}, not `{other}`"))),
        };
        if std::mem::replace(seen, true) {
            return Err(syn::Error::new(ident.span(), format!("`{ident}` is given twice")));
        }
        match tokens.next() {
            None => break,
            Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ',' => {}
            Some(other) => {
                return Err(syn::Error::new(
                    other.span(),
                    format!("{USAGE}; expected `,` after `{ident}`, not `{other}`"),
                ));
            }
        }
    }
    Ok(extras)
}

fn expand_fn(kind: FnKind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let name = kind.attr();
    if !attr.is_empty() {
        return error(
            TokenStream2::from(attr).span(),
            &format!("#[weir_sdk::{name}] takes no arguments"),
        );
    }
    let f = match syn::parse::<ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = TokenStream2::from(item)
                .into_iter()
                .next()
                .map_or(Span::call_site(), |t| t.span());
            return error(
                span,
                &format!(
                    "#[weir_sdk::{name}] goes on a function: `fn f({}) -> …`",
                    kind.argument()
                ),
            );
        }
    };
    if let Err(e) = check_signature(kind, &f) {
        // Keep the function so the only error is ours.
        let e = e.to_compile_error();
        return quote!(#f #e).into();
    }
    let ident = &f.sig.ident;
    let ret_span = match &f.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => f.sig.span(),
    };
    let call = match kind {
        FnKind::Filter => quote_spanned!(ret_span=> ::weir_sdk::__private::write_filter(e, #ident(e), w)),
        FnKind::MapValue => {
            quote_spanned!(ret_span=> ::weir_sdk::__private::write_value(e, w, |out| #ident(e, out)))
        }
        FnKind::Map | FnKind::FlatMap | FnKind::Join => {
            quote_spanned!(ret_span=> ::weir_sdk::__private::write_outputs(#ident(e), w))
        }
        FnKind::Rekey => quote_spanned!(ret_span=> ::weir_sdk::__private::write_rekey(e, #ident(e), w)),
        FnKind::Route => quote_spanned!(ret_span=> ::weir_sdk::__private::write_route(e, #ident(e), w)),
    };
    if let FnKind::Join = kind {
        let bindings = bindings("join");
        return quote! {
            #f

            /// The batch entry point: a `join-batch` in, a `result-batch` out.
            #[doc(hidden)]
            #[allow(dead_code)]
            fn __weir_join(pairs: &[u8]) -> ::std::vec::Vec<u8> {
                ::weir_sdk::__private::join_batch(pairs, |e, w| #call)
            }

            #[cfg(target_arch = "wasm32")]
            #[doc(hidden)]
            mod __weir_operator {
                #bindings

                struct Operator;

                impl exports::weir::stream::joiner::Guest for Operator {
                    fn join(pairs: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                        super::__weir_join(&pairs)
                    }
                }

                export!(Operator);
            }
        }
        .into();
    }
    let bindings = bindings("process");
    quote! {
        #f

        /// The batch entry point: an `event-batch` in, a `result-batch` out.
        /// Compiled on every target, so the operator is type-checked (and can
        /// be driven) natively too.
        #[doc(hidden)]
        #[allow(dead_code)]
        fn __weir_process(events: &[u8]) -> ::std::vec::Vec<u8> {
            ::weir_sdk::__private::process_batch(events, |e, w| #call)
        }

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __weir_operator {
            #bindings

            struct Operator;

            impl exports::weir::stream::processor::Guest for Operator {
                fn process(events: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                    super::__weir_process(&events)
                }
            }

            export!(Operator);
        }
    }
    .into()
}

/// The bindings of `world`, plus a custom section naming this SDK (which
/// `weir validate` reports).
fn bindings(world: &str) -> TokenStream2 {
    let sdk = SDK_ID.as_bytes();
    let len = sdk.len();
    let sdk = syn::LitByteStr::new(sdk, Span::call_site());
    // The `weir-sdk` custom section is plain bytes in a section of its own,
    // which nothing reads or writes at run time: `link_section` is sound there.
    quote! {
        ::weir_sdk::__private::wit_bindgen::generate!({
            inline: #WIT,
            world: #world,
            runtime_path: "::weir_sdk::__private::wit_bindgen::rt",
        });

        #[cfg(target_arch = "wasm32")]
        #[unsafe(link_section = "weir-sdk")]
        #[used]
        static WEIR_SDK: [u8; #len] = *#sdk;
    }
}

fn check_signature(kind: FnKind, f: &ItemFn) -> syn::Result<()> {
    if let FnKind::MapValue = kind {
        return check_map_value(f);
    }
    let name = kind.attr();
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span,
            format!("a #[weir_sdk::{name}] function cannot be async"),
        ));
    }
    if sig.generics.type_params().next().is_some() || sig.generics.const_params().next().is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            format!("a #[weir_sdk::{name}] function cannot be generic (lifetimes are fine)"),
        ));
    }
    let arity = format!(
        "a #[weir_sdk::{name}] function takes exactly one argument, `{}`",
        kind.argument().split(": ").nth(1).unwrap_or("&Event")
    );
    let mut inputs = sig.inputs.iter();
    let arg = match (inputs.next(), inputs.next()) {
        (Some(arg), None) => arg,
        (None, _) => return Err(syn::Error::new(sig.paren_token.span.join(), arity)),
        (Some(_), Some(extra)) => return Err(syn::Error::new(extra.span(), arity)),
    };
    let ty = match arg {
        FnArg::Typed(pat) => &pat.ty,
        FnArg::Receiver(r) => return Err(syn::Error::new(r.span(), arity)),
    };
    match &**ty {
        Type::Reference(r) if r.mutability.is_none() => {}
        other => {
            return Err(syn::Error::new(
                other.span(),
                format!(
                    "a #[weir_sdk::{name}] function takes `{}` (a shared reference), not `{}`",
                    kind.argument().split(": ").nth(1).unwrap_or("&Event"),
                    quote!(#other)
                ),
            ));
        }
    }
    if matches!(sig.output, ReturnType::Default) {
        return Err(syn::Error::new(
            sig.ident.span(),
            format!("a #[weir_sdk::{name}] function must return {}", kind.returns()),
        ));
    }
    Ok(())
}

/// `fn f(event: &Event, out: &mut ValueOut)`, returning nothing or a `Result`.
fn check_map_value(f: &ItemFn) -> syn::Result<()> {
    let sig = &f.sig;
    if let Some(a) = &sig.asyncness {
        return Err(syn::Error::new(
            a.span,
            "a #[weir_sdk::map_value] function cannot be async",
        ));
    }
    if sig.generics.type_params().next().is_some() || sig.generics.const_params().next().is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a #[weir_sdk::map_value] function cannot be generic (lifetimes are fine)",
        ));
    }
    let arity = "a #[weir_sdk::map_value] function takes two arguments, `&Event` and `&mut ValueOut`";
    let types: Vec<&Type> = sig
        .inputs
        .iter()
        .map(|a| match a {
            FnArg::Typed(pat) => Ok(&*pat.ty),
            FnArg::Receiver(r) => Err(syn::Error::new(r.span(), arity)),
        })
        .collect::<syn::Result<_>>()?;
    let [event, out] = types.as_slice() else {
        return Err(syn::Error::new(sig.inputs.span(), arity));
    };
    match (event, out) {
        (Type::Reference(e), Type::Reference(o)) if e.mutability.is_none() && o.mutability.is_some() => Ok(()),
        _ => Err(syn::Error::new(sig.inputs.span(), arity)),
    }
}

fn error(span: Span, message: &str) -> TokenStream {
    syn::Error::new(span, message).to_compile_error().into()
}
