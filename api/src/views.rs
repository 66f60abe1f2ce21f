//! Wire types shared by every list: the page a list answers with and the query fields that ask
//! for one. They live in `api`, apart from the data layer's `db::Page`, so that how a page is
//! stored and read stays free to change without changing the document (issue 23).
//!
//! One generic [`Page<T>`] serves every list. utoipa 5's derive on a generic struct names its
//! schema from the type's parts (`Page_User`) and can leave the item's schema unregistered, so
//! the schema is written here by hand and named by the item ([`Listed::PAGE`]): the document
//! keeps the names clients were generated from (`UserPage`, `ProductPage`, ...). The aliases that
//! `pages!` declares name each page for `#[utoipa::path]`, which needs a plain path to refer to
//! it by: there `Page<User>` would be named `UserPage_User`.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// A page of a list as the API sends it (every JSON list and `spreadsheet::list` serialise this).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> From<db::Page<T>> for Page<T> {
    fn from(page: db::Page<T>) -> Page<T> {
        Page { items: page.items, next_cursor: page.next_cursor }
    }
}

/// An item the API lists a page at a time: how its page is named and described in the document.
pub trait Listed: ToSchema {
    /// The page's schema name, e.g. `UserPage`.
    const PAGE: &'static str;
    /// What `next_cursor` says, for a list whose cursor is passed back some other way than as
    /// `cursor` (the change feed's `after`); none for every other list, as before.
    const NEXT_CURSOR: Option<&'static str> = None;
}

impl<T: Listed> PartialSchema for Page<T> {
    /// The schema utoipa derived for each page struct before, field for field: `items` required,
    /// `next_cursor` a nullable string (`openapi::require_sent_fields` then requires it too, as
    /// it is always sent).
    fn schema() -> RefOr<Schema> {
        let items = ArrayBuilder::new().items(Ref::from_schema_name(T::name()));
        let next_cursor = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .description(T::NEXT_CURSOR);
        ObjectBuilder::new()
            .property("items", items)
            .required("items")
            .property("next_cursor", next_cursor)
            .into()
    }
}

impl<T: Listed> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(T::PAGE)
    }

    /// The item's schema and those it refers to: a page refers to its item by name.
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}

/// Names each page: `UserPage = User` makes `User` [`Listed`] with a page named `UserPage`, and
/// `UserPage` an alias of `Page<User>` for the path attributes.
///
/// Pages of items the API defines itself name themselves where the item is defined (so that this
/// file imports no route: `routes::ods` names `OdsSuccessionPage`).
macro_rules! pages {
    ($($page:ident = $item:ty $(, next_cursor = $next_cursor:literal)?;)*) => {$(
        impl $crate::views::Listed for $item {
            const PAGE: &'static str = stringify!($page);
            $(const NEXT_CURSOR: Option<&'static str> = Some($next_cursor);)?
        }

        pub type $page = $crate::views::Page<$item>;
    )*};
}
pub(crate) use pages;

pages! {
    AdvisoryPage = db::advisories::Advisory;
    AgreementPage = db::agreements::Agreement;
    AllocationPage = db::ledger::Allocation;
    AuditPage = db::audit::AuditEvent;
    ChangePage = db::audit::FeedChange,
        next_cursor = "Another page is there to read now (pass it as `after`); null when this page reached the\nend for now: keep the last item's `cursor` and ask again later.";
    DeliveryPage = db::deliveries::Delivery;
    EntitlementPage = db::agreements::Entitlement;
    ObligationPage = db::reports::OpenObligation;
    OrganisationPage = db::organisations::Organisation;
    ProductPage = db::products::Product;
    PurchasePage = db::purchases::Purchase;
    ReconciliationPage = db::reconciliation::ReconciliationRow;
    SeatRequestPage = db::seat_requests::SeatRequest;
    StandardPage = db::standards::Standard;
    SubscriptionPage = db::subscriptions::Subscription;
    SupplierPage = db::products::Supplier;
    UnmatchedPage = db::estates::Unmatched;
    UserPage = db::users::User;
}

/// Declares a list's query: the list's own parameters, then at `..page` the two that every
/// list takes (`limit` and `cursor`, declared here and nowhere else), then any that follow them
/// in the document (`format`). Unknown parameters are refused (400) as for every query, and
/// `preconditions::page_request` turns the two into the data layer's page request.
///
/// A macro rather than a `PageQuery` struct taken in with `#[serde(flatten)]`: utoipa 5's
/// `IntoParams` derive does not flatten (the struct would be one parameter named `page`), serde
/// hands a flattened struct the query's values as text so `limit` would no longer parse as a
/// number, and with flatten `deny_unknown_fields` no longer names the parameters expected.
macro_rules! list_query {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$before_meta:meta])* pub $before:ident: $before_ty:ty,)*
            ..page
            $(, $(#[$after_meta:meta])* pub $after:ident: $after_ty:ty)* $(,)?
        }
    ) => {
        #[derive(serde::Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields)]
        $(#[$meta])*
        pub struct $name {
            $($(#[$before_meta])* pub $before: $before_ty,)*
            /// Page size, 1 to 500 (default 50).
            #[param(minimum = 1, maximum = 500)]
            pub limit: Option<i64>,
            /// `next_cursor` of the previous page.
            pub cursor: Option<String>,
            $($(#[$after_meta])* pub $after: $after_ty,)*
        }
    };
}
pub(crate) use list_query;
