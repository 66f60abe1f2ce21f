use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use chrono::NaiveDate;
use db::products::{Product, ProductFields, ProductFilter, Supplier};
use db::vocabulary::SupportStatus;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authorised;
use crate::auth::extractors::{AdminOnly, AnyRole};
use crate::body::Json;
use crate::error::ApiResult;
use crate::openapi::{PreconditionErrors, ReadErrors, WriteErrors};
use crate::preconditions::{IfMatch, double_option, page_request, with_etag};
use crate::routes::today;
use crate::spreadsheet::{self, PageQuery};
use crate::state::AppState;
use crate::views::{ProductPage, SupplierPage, list_query};

/// List suppliers, ordered by id.
#[utoipa::path(
    tag = "products",
    operation_id = "list_suppliers",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, description = "A page of suppliers, or all of them as CSV", content(
            (SupplierPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/suppliers")]
pub async fn list_suppliers(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<PageQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    spreadsheet::list(&state, csv, "suppliers", page, move |conn, page| {
        db::products::list_suppliers(conn, page)
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSupplier {
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub name: String,
    pub source: Option<String>,
}

/// Create a supplier.
#[utoipa::path(
    tag = "products",
    operation_id = "create_supplier",
    security(("bearer" = [])),
    request_body = CreateSupplier,
    responses((status = 201, body = Supplier), WriteErrors)
)]
#[post("/suppliers")]
pub async fn create_supplier(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateSupplier>,
) -> ApiResult<HttpResponse> {
    let CreateSupplier { name, source } = body.into_inner();
    let actor = admin.actor();
    let supplier = state.run(move |db| db::products::create_supplier(db, &actor, &name, source)).await?;
    Ok(HttpResponse::Created().json(supplier))
}

list_query! {
    pub struct ProductQuery {
        pub supplier_id: Option<i64>,
        /// A category slug, e.g. `operating-system`.
        pub category: Option<String>,
        /// Support status at `on`.
        pub support_status: Option<SupportStatus>,
        /// Only products with (true) or without (false) a national entitlement in force at `on`.
        pub nationally_licensed: Option<bool>,
        /// Words to search for, in any order, each in any of the product's name, edition,
        /// version, SKU, supplier or release names; every word must match. A word matches a
        /// word it equals or begins (`win` finds Windows), or, when no product has the word,
        /// one a typo away (one edit for a word of 4-7 letters, two for longer; a swap of two
        /// letters is one edit; never for words with digits, so `win7` is not `win8`). A word with punctuation (`MS-WIN10-ENT`)
        /// matches its parts in that order. At most 8 words are read. The page stays in id
        /// order. A CSV download (`format=csv`) matches `q` as a case-insensitive part of the
        /// name, edition or SKU instead.
        pub q: Option<String>,
        /// The date for support status and licensing (default today).
        #[serde(default, deserialize_with = "crate::dates::optional")]
        pub on: Option<NaiveDate>,
        ..page,
        /// `csv` for every row from the cursor on as one CSV file (or send `Accept: text/csv`).
        pub format: Option<crate::spreadsheet::Format>,
    }
}

/// List products, ordered by id, with their support status at `on`.
#[utoipa::path(
    tag = "products",
    operation_id = "list_products",
    security(("bearer" = [])),
    params(ProductQuery),
    responses((status = 200, description = "A page of products, or all of them as CSV", content(
            (ProductPage = "application/json"),
            (String = "text/csv"),
        )), ReadErrors)
)]
#[get("/products")]
pub async fn list_products(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    query: web::Query<ProductQuery>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let csv = spreadsheet::wants_csv(&request, query.format);
    let page = page_request(query.limit, query.cursor)?;
    let on = query.on.unwrap_or_else(today);
    let filter = ProductFilter {
        supplier_id: query.supplier_id,
        category: query.category,
        support_status: query.support_status,
        nationally_licensed: query.nationally_licensed,
        q: query.q,
    };
    if csv {
        // Every product, read in batches; the in-memory text index speeds pages, not files.
        return spreadsheet::list(&state, true, "products", page, move |conn, page| {
            db::products::list(conn, &filter, on, page)
        })
        .await;
    }
    Ok(HttpResponse::Ok().json(ProductPage::from(state.products(filter, on, page).await?)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OnQuery {
    /// The date for the support status (default today).
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub on: Option<NaiveDate>,
}

/// One product, with its support status at `on`.
#[utoipa::path(
    tag = "products",
    operation_id = "get_product",
    security(("bearer" = [])),
    params(("id" = i64, Path, description = "Product id"), OnQuery),
    responses((status = 200, body = Product, headers(("ETag" = String))), ReadErrors)
)]
#[get("/products/{id}")]
pub async fn get_product(
    state: web::Data<AppState>,
    _user: Authorised<AnyRole>,
    id: web::Path<i64>,
    query: web::Query<OnQuery>,
) -> ApiResult<HttpResponse> {
    let (id, on) = (id.into_inner(), query.on.unwrap_or_else(today));
    let product = state.read(move |conn| db::products::get(conn, id, on)).await?;
    Ok(with_etag(HttpResponse::Ok(), product.revision, &product))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub supplier_id: i64,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub name: String,
    #[serde(default)]
    pub edition: String,
    #[serde(default)]
    pub version: String,
    pub sku: Option<String>,
    /// A slug: lower-case letters, digits and hyphens.
    #[schema(pattern = "^[a-z0-9-]+$")]
    pub category: String,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub released_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub mainstream_support_ends_on: Option<NaiveDate>,
    #[serde(default, deserialize_with = "crate::dates::optional")]
    pub extended_support_ends_on: Option<NaiveDate>,
    #[serde(default)]
    pub dtac_passed: bool,
    #[serde(default)]
    pub mds2_supplied: bool,
    /// The product that replaces this one; it must exist and must not lead back to this one.
    pub successor_id: Option<i64>,
    pub source: Option<String>,
}

/// Create a product.
#[utoipa::path(
    tag = "products",
    operation_id = "create_product",
    security(("bearer" = [])),
    request_body = CreateProduct,
    responses((status = 201, body = Product, headers(("ETag" = String))), WriteErrors)
)]
#[post("/products")]
pub async fn create_product(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    body: Json<CreateProduct>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    let fields = ProductFields {
        supplier_id: b.supplier_id,
        name: b.name,
        edition: b.edition,
        version: b.version,
        sku: b.sku,
        category: b.category,
        released_on: b.released_on,
        mainstream_support_ends_on: b.mainstream_support_ends_on,
        extended_support_ends_on: b.extended_support_ends_on,
        dtac_passed: b.dtac_passed,
        mds2_supplied: b.mds2_supplied,
        successor_id: b.successor_id,
        source: b.source,
    };
    let actor = admin.actor();
    let product = state.run(move |db| db::products::create(db, &actor, fields, today())).await?;
    Ok(with_etag(HttpResponse::Created(), product.revision, &product))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub supplier_id: Option<i64>,
    #[schema(min_length = 1)]
    #[schema(pattern = "[^\\s\\u0085]")]
    pub name: Option<String>,
    pub edition: Option<String>,
    pub version: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub sku: Option<Option<String>>,
    #[schema(pattern = "^[a-z0-9-]+$")]
    pub category: Option<String>,
    #[serde(default, deserialize_with = "crate::dates::double_optional")]
    #[schema(value_type = Option<NaiveDate>)]
    pub released_on: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "crate::dates::double_optional")]
    #[schema(value_type = Option<NaiveDate>)]
    pub mainstream_support_ends_on: Option<Option<NaiveDate>>,
    #[serde(default, deserialize_with = "crate::dates::double_optional")]
    #[schema(value_type = Option<NaiveDate>)]
    pub extended_support_ends_on: Option<Option<NaiveDate>>,
    pub dtac_passed: Option<bool>,
    pub mds2_supplied: Option<bool>,
    /// The product that replaces this one (null removes the link); it must exist and must not
    /// lead back to this one.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    pub successor_id: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub source: Option<Option<String>>,
}

/// Update a product (for example its lifecycle dates).
#[utoipa::path(
    tag = "products",
    operation_id = "update_product",
    security(("bearer" = [])),
    params(
        ("id" = i64, Path, description = "Product id"),
        ("If-Match" = String, Header, description = "The ETag from GET (a quoted entity tag such as \"3\"; several may be listed), or *; anything else is refused with 400", pattern = r#"^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$"#),
    ),
    request_body = UpdateProduct,
    responses((status = 200, body = Product, headers(("ETag" = String))), WriteErrors, PreconditionErrors)
)]
#[patch("/products/{id}")]
pub async fn update_product(
    state: web::Data<AppState>,
    admin: Authorised<AdminOnly>,
    id: web::Path<i64>,
    if_match: IfMatch,
    body: Json<UpdateProduct>,
) -> ApiResult<HttpResponse> {
    let b = body.into_inner();
    // The body is judged before the precondition: a bad body is 422 whatever the ETag.
    if b.name.as_deref().is_some_and(|name| name.trim().is_empty()) {
        return Err(crate::error::ApiError::Unprocessable("name must not be empty".into()));
    }
    if b.category.as_deref().is_some_and(|category| !db::vocabulary::is_slug(category)) {
        return Err(crate::error::ApiError::Unprocessable("category must be a slug".into()));
    }
    let precondition = if_match.precondition()?;
    let change = move |f: &mut ProductFields| {
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(value) = b.$field { f.$field = value; })* };
        }
        set!(supplier_id, name, edition, version, sku, category, released_on, mainstream_support_ends_on);
        set!(extended_support_ends_on, dtac_passed, mds2_supplied, successor_id, source);
    };
    let (id, actor) = (id.into_inner(), admin.actor());
    let product =
        state.run(move |db| db::products::update(db, &actor, id, change, precondition, today())).await?;
    Ok(with_etag(HttpResponse::Ok(), product.revision, &product))
}
