//! Product search that forgives typos and word order (issue 22): "windos 10" finds Windows 10,
//! "365 E3 microsoft" finds Microsoft 365 E3. An in-RAM tantivy index of each product's name,
//! edition, version, SKU, supplier and release names, kept by the read model beside the products
//! it holds and changed where they change, so each instance searches what it has seen.
//!
//! The substring scan it replaces could not forgive a typo, and a `LIKE` per word over every
//! row cost the benchmark's search 78-100 ms at p99.
//!
//! A question is split into words (at most [`MAX_WORDS`], as the database's search takes); every
//! word must match (so their order does not matter), in any field. A word matches a word of the
//! product that it equals or begins (so "win" finds Windows, as the substring search did), or,
//! for a word of letters that no product has, one within an edit distance of 1 (4-7 letters) or
//! 2 (8 or more), a swap of two letters counting as one edit. Words with digits are never
//! matched loosely: "win7" is not "win8", nor "2019" "2016". A word that punctuation splits ("MS-WIN10-ENT", "8.1") must
//! match its parts in order within one field, the last one as a prefix.
//!
//! Answers are product ids in id order after a cursor, as the product list pages them, not by
//! relevance: the list's cursor is a product id.

use std::ops::Bound;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, FuzzyTermQuery, Occur, PhrasePrefixQuery, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, WhitespaceTokenizer,
};
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument, Term};

use crate::error::{DbError, DbResult};

/// The most words of a question that are searched for (the database's search takes as many).
pub const MAX_WORDS: usize = 8;

/// The analyzer of the text fields and of questions: words of letters and digits (punctuation
/// splits them), lower case, accents folded ("eclair" finds "Éclair").
const ANALYZER: &str = "product_words";

/// What a product is searched by.
#[derive(Debug, Clone, Default)]
pub(super) struct SearchDoc {
    pub id: i64,
    pub name: String,
    pub edition: String,
    pub version: String,
    pub sku: Option<String>,
    pub supplier: String,
    pub releases: Vec<String>,
}

/// One text field holds every text of a product (name, edition, version, SKU, supplier, each
/// release) as separate values: tantivy leaves a gap in positions between values, so a phrase
/// never runs from one into the next. A field per text cost six times the automata and
/// term-dictionary walks per word (the benchmark's search ran at a quarter of the substring
/// scan's rate), for nothing: a word may match in any of them.
///
/// `prefixes` holds the beginnings of each word (up to [`PREFIX_CHARS`] characters) as terms of
/// their own, so that a word begun is one posting list read. Matched against the words'
/// dictionary instead, a begun number expanded to every number it begins ("12" to 1,111 terms
/// among 20,000 synthetic products, each a posting list to open): the benchmark's search ran
/// slower than the substring scan it replaced.
struct Fields {
    id: Field,
    text: Field,
    prefixes: Field,
}

/// The longest beginning of a word held as a term; a longer word of a question is matched as a
/// prefix against the words themselves.
const PREFIX_CHARS: usize = 12;
/// The analyzer of `prefixes`: the terms are made by [`ProductSearch::document`].
const PREFIXES: &str = "product_prefixes";

/// The index, its one writer and its reader. A writer commits after each batch of changes and
/// the reader is reloaded before the writer is let go, so a search that begins after a change
/// returns finds it.
pub(super) struct ProductSearch {
    fields: Fields,
    analyzer: TextAnalyzer,
    writer: Mutex<IndexWriter>,
    reader: IndexReader,
}

impl From<tantivy::TantivyError> for DbError {
    fn from(error: tantivy::TantivyError) -> Self {
        DbError::Internal(format!("product search index: {error}"))
    }
}

/// The indexing memory of the one writer thread: tantivy's least. Products are short texts; a
/// whole load (200,000 products in the 10x benchmark) fits in a few segments.
const WRITER_MEMORY: usize = 15_000_000;

impl ProductSearch {
    /// An empty index.
    pub(super) fn new() -> DbResult<ProductSearch> {
        let mut schema = Schema::builder();
        let id = schema.add_i64_field("id", INDEXED | FAST);
        let words = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let text = schema.add_text_field("text", words);
        let prefixes = schema.add_text_field(
            "prefixes",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(PREFIXES)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        );
        let index = Index::create_in_ram(schema.build());
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
            .filter(AsciiFoldingFilter)
            .build();
        index.tokenizers().register(ANALYZER, analyzer.clone());
        index.tokenizers().register(PREFIXES, TextAnalyzer::from(WhitespaceTokenizer::default()));
        // One indexing thread and one merging thread: the service shares its two cores with
        // the requests it answers.
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_MEMORY)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer = index.writer_with_options(options)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(ProductSearch {
            fields: Fields { id, text, prefixes },
            analyzer,
            writer: Mutex::new(writer),
            reader,
        })
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn document(&self, product: &SearchDoc) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_i64(self.fields.id, product.id);
        let texts = [&product.name, &product.edition, &product.version, &product.supplier];
        let mut prefixes = String::new();
        for text in texts.into_iter().chain(&product.sku).chain(&product.releases) {
            doc.add_text(self.fields.text, text);
            for token in self.tokens(text) {
                for (end, _) in token.char_indices().skip(1).chain([(token.len(), ' ')]).take(PREFIX_CHARS) {
                    prefixes.push_str(&token[..end]);
                    prefixes.push(' ');
                }
            }
        }
        doc.add_text(self.fields.prefixes, &prefixes);
        doc
    }

    /// Adds products not yet held (a whole load); they are found after [`ProductSearch::commit`].
    pub(super) fn add(&self, products: &[SearchDoc]) -> DbResult<()> {
        let writer = self.writer();
        for product in products {
            writer.add_document(self.document(product))?;
        }
        Ok(())
    }

    /// Makes what was added findable.
    pub(super) fn commit(&self) -> DbResult<()> {
        let mut writer = self.writer();
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Replaces what is held for product `id` with `product` (none when it is gone), findable
    /// on return.
    pub(super) fn replace(&self, id: i64, product: Option<&SearchDoc>) -> DbResult<()> {
        let mut writer = self.writer();
        writer.delete_term(Term::from_field_i64(self.fields.id, id));
        if let Some(product) = product {
            writer.add_document(self.document(product))?;
        }
        writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// The ids, in order, of the products after `after` that match `text` (see the module
    /// documentation); at most `at_most` of them. A text with no words matches every product.
    pub(super) fn matching(&self, text: &str, after: Option<i64>, at_most: usize) -> DbResult<Vec<i64>> {
        if at_most == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = self.words_query(&searcher, text);
        if let Some(after) = after {
            let after = Term::from_field_i64(self.fields.id, after);
            clauses.push((Occur::Must, Box::new(RangeQuery::new(Bound::Excluded(after), Bound::Unbounded))));
        }
        let query: Box<dyn Query> =
            if clauses.is_empty() { Box::new(AllQuery) } else { Box::new(BooleanQuery::new(clauses)) };
        let ordered = TopDocs::with_limit(at_most).order_by_fast_field::<i64>("id", Order::Asc);
        let found = searcher.search(&query, &ordered)?;
        Ok(found.into_iter().filter_map(|(id, _)| id).collect())
    }

    /// Every word of `text` as a required clause; nothing when it has no words.
    fn words_query(&self, searcher: &Searcher, text: &str) -> Vec<(Occur, Box<dyn Query>)> {
        text.split_whitespace()
            .take(MAX_WORDS)
            .map(|word| (Occur::Must, self.word_query(searcher, word)))
            .collect()
    }

    /// Whether some product has this word: a word spelt as a product spells it is not loosened
    /// (the typo automaton walks much of the dictionary: the most costly part of a search).
    fn known(&self, searcher: &Searcher, token: &str) -> bool {
        let term = Term::from_field_text(self.fields.text, token);
        searcher.segment_readers().iter().any(|segment| {
            segment
                .inverted_index(self.fields.text)
                .ok()
                .and_then(|index| index.get_term_info(&term).ok().flatten())
                .is_some()
        })
    }

    /// What one word of a question matches, in any of the product's texts.
    fn word_query(&self, searcher: &Searcher, word: &str) -> Box<dyn Query> {
        let tokens = self.tokens(word);
        let term = |token: &str| Term::from_field_text(self.fields.text, token);
        match tokens.as_slice() {
            // Only punctuation ("%", "-"): no product has such a word.
            [] => Box::new(EmptyQuery),
            [token] => {
                let begun: Box<dyn Query> = if token.chars().count() <= PREFIX_CHARS {
                    let prefix = Term::from_field_text(self.fields.prefixes, token);
                    Box::new(TermQuery::new(prefix, IndexRecordOption::Basic))
                } else {
                    Box::new(FuzzyTermQuery::new_prefix(term(token), 0, true))
                };
                match forgiven_edits(token) {
                    _ if self.known(searcher, token) => begun,
                    0 => begun,
                    distance => Box::new(BooleanQuery::union(vec![
                        begun,
                        Box::new(FuzzyTermQuery::new(term(token), distance, true)),
                    ])),
                }
            }
            several => Box::new(PhrasePrefixQuery::new(several.iter().map(|token| term(token)).collect())),
        }
    }

    /// A word's tokens as the index holds words.
    fn tokens(&self, word: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(word);
        let mut tokens = Vec::new();
        while stream.advance() {
            tokens.push(stream.token().text.clone());
        }
        tokens
    }
}

/// How many edits a word of the question may be from a product's word: none for short words and
/// for words with digits (versions, model numbers and SKUs, where one character apart is another
/// product), else 1 for 4-7 letters and 2 for longer words.
fn forgiven_edits(token: &str) -> u8 {
    if !token.chars().all(char::is_alphabetic) {
        return 0;
    }
    match token.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(
        id: i64,
        name: &str,
        edition: &str,
        version: &str,
        sku: Option<&str>,
        supplier: &str,
    ) -> SearchDoc {
        SearchDoc {
            id,
            name: name.into(),
            edition: edition.into(),
            version: version.into(),
            sku: sku.map(Into::into),
            supplier: supplier.into(),
            releases: Vec::new(),
        }
    }

    fn catalogue() -> ProductSearch {
        let search = ProductSearch::new().unwrap_or_else(|e| panic!("{e}"));
        let products = [
            product(3, "Windows 7", "Enterprise", "6.1", Some("MS-WIN7-ENT"), "Microsoft"),
            product(5, "Windows 10", "Enterprise", "10.0", Some("MS-WIN10-ENT"), "Microsoft"),
            product(6, "Windows 10", "Pro", "10.0", Some("MS-WIN10-PRO"), "Microsoft"),
            product(4, "Windows 8.1", "Enterprise", "6.3", Some("MS-WIN81-ENT"), "Microsoft"),
            product(17, "Microsoft 365", "E3 Frontline Worker", "", Some("MS-M365-E3"), "Microsoft"),
            product(33, "Office 365", "E3", "", Some("MS-O365-E3"), "Microsoft"),
            product(36, "Microsoft 365", "E3", "", Some("MS-M365-E3-FULL"), "Microsoft"),
            product(40, "ExampleScan Ultrasound", "Cart", "9.1", Some("EXIMG-US-9"), "Example Imaging Ltd"),
            product(41, "Éclair", "", "", None, "Pâtisserie"),
            SearchDoc {
                releases: vec!["22H2".into(), "LTSC 2021".into()],
                ..product(
                    42,
                    "Windows Server 2019",
                    "Standard",
                    "10.0.17763",
                    Some("MS-WS2019-STD"),
                    "Microsoft",
                )
            },
        ];
        search.add(&products).and_then(|()| search.commit()).unwrap_or_else(|e| panic!("{e}"));
        search
    }

    fn found(search: &ProductSearch, text: &str) -> Vec<i64> {
        search.matching(text, None, 100).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn typos_and_word_order_are_forgiven() {
        let search = catalogue();
        // Windows Server 2019's version is 10.0.17763: its words are 10, 0 and 17763.
        assert_eq!(found(&search, "windos 10"), vec![5, 6, 42]);
        // Office 365 E3's supplier is Microsoft.
        assert_eq!(found(&search, "365 E3 microsoft"), vec![17, 33, 36]);
        assert_eq!(found(&search, "mircosoft 365 e3"), vec![17, 33, 36], "a swap of two letters is one edit");
        assert_eq!(found(&search, "enterprize windows 10"), vec![5]);
        assert_eq!(found(&search, "ultrasund"), vec![40]);
    }

    #[test]
    fn prefixes_skus_suppliers_and_releases_are_found() {
        let search = catalogue();
        assert_eq!(found(&search, "win"), vec![3, 4, 5, 6, 42], "a prefix");
        assert_eq!(found(&search, "MS-WIN10-ENT"), vec![5], "a whole SKU");
        assert_eq!(found(&search, "ms-win1"), vec![5, 6], "the start of a SKU");
        assert_eq!(found(&search, "ms-m365-e3"), vec![17, 36]);
        assert_eq!(found(&search, "8.1"), vec![4], "a version");
        assert_eq!(found(&search, "imaging"), vec![40], "the supplier");
        assert_eq!(found(&search, "examplesc"), vec![40], "a prefix of a word");
        assert_eq!(found(&search, "pâtisseri"), vec![41], "of a word with an accent");
        assert_eq!(found(&search, "ltsc 2021"), vec![42], "a release");
        assert_eq!(found(&search, "ECLAIR"), vec![41], "accents and case");
        assert_eq!(found(&search, "pâtisserie"), vec![41]);
    }

    #[test]
    fn what_must_not_match_does_not() {
        let search = catalogue();
        assert_eq!(found(&search, "win9"), Vec::<i64>::new(), "digits are never loosened");
        assert_eq!(found(&search, "windows 2016"), Vec::<i64>::new());
        assert_eq!(found(&search, "windows linux"), Vec::<i64>::new(), "every word must match");
        assert_eq!(found(&search, "ms-o365-e5"), Vec::<i64>::new());
        assert_eq!(found(&search, "e3-365"), Vec::<i64>::new(), "a split word's parts keep their order");
        assert_eq!(found(&search, "wnidows servre 2019"), vec![42], "but swaps are forgiven");
        assert_eq!(found(&search, "%"), Vec::<i64>::new(), "punctuation alone");
        assert_eq!(found(&search, "pro"), vec![6], "short words are not loosened");
    }

    #[test]
    fn answers_page_in_id_order_and_follow_replacements() {
        let search = catalogue();
        assert_eq!(found(&search, "windows 10 enterprise"), vec![5]);
        let page =
            |after, at_most| search.matching("windows", after, at_most).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(page(None, 2), vec![3, 4]);
        assert_eq!(page(Some(4), 2), vec![5, 6]);
        assert_eq!(page(Some(6), 2), vec![42]);
        assert_eq!(page(Some(42), 2), Vec::<i64>::new());
        assert_eq!(page(None, 0), Vec::<i64>::new());
        assert_eq!(found(&search, "").len(), 10, "no words: every product");
        assert_eq!(found(&search, "  ").len(), 10);

        let renamed = product(5, "Linux Desktop", "Enterprise", "10.0", Some("MS-WIN10-ENT"), "Microsoft");
        search.replace(5, Some(&renamed)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found(&search, "windows 10 enterprise"), Vec::<i64>::new(), "not by its old name");
        assert_eq!(found(&search, "linux destkop"), vec![5], "by its new one, at once");
        search.replace(5, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(found(&search, "linux"), Vec::<i64>::new(), "gone");
    }
}
