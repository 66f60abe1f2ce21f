//! How the read model holds organisations and products: compactly, because at national scale
//! (250,000 organisations and 200,000 products in the 10x benchmark) the layout decides the
//! server's memory. A heap profile of the first read model (heaptrack, 10x data) showed hash
//! tables half empty by design (250,000 entries in 524,288 buckets: 25.7 MB for organisations)
//! and one allocation per name (450,000 small allocations). Here each table is one vector sorted
//! by key, looked up by binary search, and its texts share one string.

use chrono::NaiveDate;

use crate::coverage::CoveredProduct;
use crate::error::{DbError, DbResult};
use crate::vocabulary::{OrganisationKind, SupportStatus};

/// An ODS code stored inline (codes are at most 10 characters): no allocation per organisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Code {
    bytes: [u8; 10],
    len: u8,
}

impl Code {
    pub(super) fn new(text: &str) -> Option<Code> {
        let upper = text.to_ascii_uppercase();
        let raw = upper.as_bytes();
        if raw.is_empty() || raw.len() > 10 {
            return None;
        }
        let mut bytes = [0u8; 10];
        bytes[..raw.len()].copy_from_slice(raw);
        Some(Code { bytes, len: raw.len() as u8 })
    }

    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

/// Where one text lies in a [`Texts`].
#[derive(Clone, Copy)]
struct TextRef {
    start: u32,
    len: u32,
}

/// Short texts stored end to end in one string. A replaced text stays behind as garbage until
/// the owner compacts (see [`Texts::wasteful`]).
#[derive(Default)]
struct Texts {
    bytes: String,
    garbage: usize,
}

impl Texts {
    fn push(&mut self, text: &str) -> DbResult<TextRef> {
        let too_large = || DbError::Internal("read model texts exceed 4 GiB".into());
        let start = u32::try_from(self.bytes.len()).map_err(|_| too_large())?;
        let len = u32::try_from(text.len()).map_err(|_| too_large())?;
        start.checked_add(len).ok_or_else(too_large)?;
        self.bytes.push_str(text);
        Ok(TextRef { start, len })
    }

    fn get(&self, text: TextRef) -> &str {
        let start = text.start as usize;
        self.bytes.get(start..start + text.len as usize).unwrap_or_default()
    }

    fn release(&mut self, text: TextRef) {
        self.garbage += text.len as usize;
    }

    /// More than half garbage (and more than a megabyte of it): time to compact.
    fn wasteful(&self) -> bool {
        self.garbage > 1 << 20 && self.garbage * 2 > self.bytes.len()
    }
}

pub(super) type OrganisationRow = (String, String, String, Option<NaiveDate>, Option<String>);

/// What coverage needs of an organisation.
pub(super) struct CachedOrganisation {
    code: Code,
    name: TextRef,
    pub(super) kind: OrganisationKind,
    pub(super) closed: bool,
    pub(super) successor_code: Option<Code>,
}

/// Organisations sorted by code.
#[derive(Default)]
pub(super) struct Organisations {
    sorted: Vec<CachedOrganisation>,
    names: Texts,
}

impl Organisations {
    /// Adds rows in any order; call [`Organisations::finish_loading`] after the last.
    pub(super) fn load(&mut self, rows: Vec<OrganisationRow>) -> DbResult<()> {
        for row in rows {
            if let Some(organisation) = self.cached(row)? {
                self.sorted.push(organisation);
            }
        }
        Ok(())
    }

    /// Sorts what [`Organisations::load`] added (the database's collation need not be byte order)
    /// and gives back the spare capacity.
    pub(super) fn finish_loading(&mut self) {
        self.sorted.sort_unstable_by_key(|organisation| organisation.code);
        self.sorted.dedup_by_key(|organisation| organisation.code);
        self.sorted.shrink_to_fit();
        self.names.bytes.shrink_to_fit();
    }

    fn cached(&mut self, row: OrganisationRow) -> DbResult<Option<CachedOrganisation>> {
        let (code, name, kind, closed_on, successor_code) = row;
        let Some(code) = Code::new(&code) else { return Ok(None) };
        Ok(Some(CachedOrganisation {
            code,
            name: self.names.push(&name)?,
            kind: OrganisationKind::parse(&kind).unwrap_or(OrganisationKind::Other),
            closed: closed_on.is_some(),
            successor_code: successor_code.as_deref().and_then(Code::new),
        }))
    }

    fn position(&self, code: &Code) -> Result<usize, usize> {
        self.sorted.binary_search_by_key(code, |organisation| organisation.code)
    }

    pub(super) fn get(&self, code: &Code) -> Option<&CachedOrganisation> {
        self.position(code).ok().and_then(|index| self.sorted.get(index))
    }

    pub(super) fn name(&self, organisation: &CachedOrganisation) -> &str {
        self.names.get(organisation.name)
    }

    /// Replaces what is held for `code` with `rows` (none when the organisation is gone).
    pub(super) fn replace(&mut self, code: &str, rows: Vec<OrganisationRow>) -> DbResult<()> {
        if let Some(code) = Code::new(code)
            && let Ok(index) = self.position(&code)
        {
            let old = self.sorted.remove(index);
            self.names.release(old.name);
        }
        for row in rows {
            let Some(organisation) = self.cached(row)? else { continue };
            match self.position(&organisation.code) {
                Ok(index) => self.sorted[index] = organisation,
                Err(index) => self.sorted.insert(index, organisation),
            }
        }
        if self.names.wasteful() {
            self.compact();
        }
        Ok(())
    }

    fn compact(&mut self) {
        let mut names = Texts::default();
        for organisation in &mut self.sorted {
            let name = self.names.get(organisation.name);
            // Cannot fail: the live names are fewer bytes than the texts they come from.
            if let Ok(text) = names.push(name) {
                organisation.name = text;
            }
        }
        self.names = names;
    }
}

pub(super) type ProductRow =
    (i64, i64, String, String, String, Option<String>, String, Option<NaiveDate>, Option<NaiveDate>);

/// What coverage needs of a product. Name, edition, SKU and version are one text:
/// `name \0 edition \0 sku \0 version` (one allocation, not four). The product search has its
/// own index (`search.rs`).
struct CachedProduct {
    id: i64,
    supplier_id: i64,
    text: TextRef,
    has_sku: bool,
    category: u16,
    mainstream: Option<NaiveDate>,
    extended: Option<NaiveDate>,
}

/// Products sorted by id, with the ids of each category's products.
#[derive(Default)]
pub(super) struct Products {
    sorted: Vec<CachedProduct>,
    texts: Texts,
    by_category: std::collections::HashMap<u16, Vec<i64>>,
    /// Category names, indexed by the number products hold.
    categories: Vec<String>,
}

impl Products {
    /// Adds rows in any order; call [`Products::finish_loading`] after the last.
    pub(super) fn load(&mut self, rows: Vec<ProductRow>) -> DbResult<()> {
        for row in rows {
            let product = self.cached(row)?;
            self.sorted.push(product);
        }
        Ok(())
    }

    pub(super) fn finish_loading(&mut self) {
        self.sorted.sort_unstable_by_key(|product| product.id);
        self.sorted.dedup_by_key(|product| product.id);
        self.sorted.shrink_to_fit();
        self.texts.bytes.shrink_to_fit();
        self.by_category.clear();
        for product in &self.sorted {
            self.by_category.entry(product.category).or_default().push(product.id);
        }
    }

    fn category_index(&mut self, category: &str) -> u16 {
        match self.categories.iter().position(|c| c == category) {
            Some(index) => index as u16,
            None => {
                self.categories.push(category.to_owned());
                (self.categories.len() - 1) as u16
            }
        }
    }

    fn cached(&mut self, row: ProductRow) -> DbResult<CachedProduct> {
        let (id, supplier_id, name, edition, version, sku, category, mainstream, extended) = row;
        let category = self.category_index(&category);
        let sku = sku.as_deref();
        let text = format!("{name}\0{edition}\0{}\0{version}", sku.unwrap_or_default());
        Ok(CachedProduct {
            id,
            supplier_id,
            text: self.texts.push(&text)?,
            has_sku: sku.is_some(),
            category,
            mainstream,
            extended,
        })
    }

    fn position(&self, id: i64) -> Result<usize, usize> {
        self.sorted.binary_search_by_key(&id, |product| product.id)
    }

    /// Replaces what is held for product `id` with `rows` (none when it is gone).
    pub(super) fn replace(&mut self, id: i64, rows: Vec<ProductRow>) -> DbResult<()> {
        if let Ok(index) = self.position(id) {
            let old = self.sorted.remove(index);
            self.texts.release(old.text);
            if let Some(ids) = self.by_category.get_mut(&old.category) {
                ids.retain(|other| *other != id);
            }
        }
        for row in rows {
            let product = self.cached(row)?;
            self.by_category.entry(product.category).or_default().push(product.id);
            match self.position(product.id) {
                Ok(index) => self.sorted[index] = product,
                Err(index) => self.sorted.insert(index, product),
            }
        }
        if self.texts.wasteful() {
            self.compact();
        }
        Ok(())
    }

    fn compact(&mut self) {
        let mut texts = Texts::default();
        for product in &mut self.sorted {
            // Cannot fail: the live texts are fewer bytes than the texts they come from.
            if let Ok(text) = texts.push(self.texts.get(product.text)) {
                product.text = text;
            }
        }
        self.texts = texts;
    }

    /// Product `id` as coverage reports it, with its support status on `on`.
    pub(super) fn covered(&self, id: i64, on: NaiveDate) -> Option<CoveredProduct> {
        let product = self.sorted.get(self.position(id).ok()?)?;
        let mut parts = self.texts.get(product.text).split('\0');
        let (name, edition) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let sku = parts.next().filter(|_| product.has_sku);
        let version = parts.next().unwrap_or("");
        Some(
            CoveredProduct {
                id,
                supplier_id: product.supplier_id,
                name: name.to_owned(),
                edition: edition.to_owned(),
                version: version.to_owned(),
                sku: sku.map(str::to_owned),
                category: self.categories.get(product.category as usize).cloned().unwrap_or_default(),
                mainstream_support_ends_on: product.mainstream,
                extended_support_ends_on: product.extended,
                support_status: SupportStatus::Supported,
            }
            .at(on),
        )
    }

    /// The ids of the products in `category`, or `None` when no product has it.
    pub(super) fn in_category(&self, category: &str) -> Option<&[i64]> {
        let index = self.categories.iter().position(|c| c == category)?;
        self.by_category.get(&(index as u16)).map(Vec::as_slice).filter(|ids| !ids.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn organisation(code: &str, name: &str) -> OrganisationRow {
        (code.into(), name.into(), "nhs_trust".into(), None, None)
    }

    #[test]
    fn organisations_are_found_by_code_whatever_order_they_load_in() {
        let mut organisations = Organisations::default();
        organisations
            .load(vec![organisation("RR8", "Leeds"), organisation("R1A", "Worcestershire")])
            .and_then(|()| organisations.load(vec![organisation("RJ1", "Guy's and St Thomas'")]))
            .unwrap_or_else(|e| panic!("{e}"));
        organisations.finish_loading();
        for (code, name) in [("RR8", "Leeds"), ("r1a", "Worcestershire"), ("RJ1", "Guy's and St Thomas'")] {
            let found = organisations.get(&Code::new(code).unwrap_or_else(|| panic!("{code}")));
            assert_eq!(found.map(|o| organisations.name(o)), Some(name));
        }
        assert!(organisations.get(&Code::new("RXX").unwrap_or_else(|| panic!())).is_none());
    }

    #[test]
    fn replacing_an_organisation_keeps_the_order_and_compacts_its_garbage() {
        let mut organisations = Organisations::default();
        organisations.finish_loading();
        let long_name = "x".repeat(4096);
        for round in 0..1000 {
            organisations
                .replace("RR8", vec![organisation("RR8", &format!("{long_name}{round}"))])
                .and_then(|()| organisations.replace("RA1", vec![organisation("RA1", "A")]))
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let code = Code::new("RR8").unwrap_or_else(|| panic!());
        assert_eq!(
            organisations.get(&code).map(|o| organisations.name(o)),
            Some(&*format!("{long_name}999"))
        );
        assert!(organisations.names.bytes.len() < 3 << 20, "garbage is compacted");
        organisations.replace("RR8", Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        assert!(organisations.get(&code).is_none());
        assert!(organisations.get(&Code::new("RA1").unwrap_or_else(|| panic!())).is_some());
    }

    #[test]
    fn products_keep_their_texts_and_categories_through_replacement() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1);
        let row = |id: i64, name: &str, category: &str, sku: Option<&str>| -> ProductRow {
            (id, 1, name.into(), "Pro".into(), "1".into(), sku.map(Into::into), category.into(), day, None)
        };
        let mut products = Products::default();
        products
            .load(vec![row(2, "Beta", "office", None), row(1, "Alpha", "office", Some("A-1"))])
            .unwrap_or_else(|e| panic!("{e}"));
        products.finish_loading();
        let on = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap_or_default();
        let alpha = products.covered(1, on).unwrap_or_else(|| panic!("product 1"));
        assert_eq!((alpha.name.as_str(), alpha.sku.as_deref()), ("Alpha", Some("A-1")));
        assert_eq!(products.covered(2, on).and_then(|p| p.sku), None);
        assert_eq!(products.in_category("office"), Some(&[1, 2][..]));

        products.replace(2, vec![row(2, "Beta", "browser", None)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(products.in_category("office"), Some(&[1][..]));
        assert_eq!(products.in_category("browser"), Some(&[2][..]));
        products.replace(1, Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        assert!(products.covered(1, on).is_none());
        assert_eq!(products.in_category("office"), None);
    }
}
