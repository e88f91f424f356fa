//! What the search engines index: one document per active listing, made by a pure function of
//! the listing's folded state, so both backends (and a rebuild) index exactly the same thing.

use std::collections::BTreeMap;

use bozor_domain::listing::{Details, Listing, Status};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::synonyms;
use crate::translit::key;

/// A listing as the search engines see it. `title_key` and `text_key` are the Latin search keys
/// (see `translit::key`), with the canonical spellings of the names they contain (see
/// `synonyms`): a query is matched against the original text and these.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// Not sent to Meilisearch (see `MeiliSearch::write`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// `product`, `classified` or `game_account`.
    pub kind: String,
    pub category: String,
    pub game: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    /// Tiyin.
    pub price: i64,
    pub has_images: bool,
    /// A paid promotion (Top or VIP) was bought for it.
    pub premium: bool,
    /// `free`, `premium` or `pro`.
    pub seller_plan: String,
    /// Reviews do not exist yet: always null.
    pub seller_rating: Option<f64>,
    /// Completed sales.
    pub popularity: i64,
    /// Seconds since the epoch (sortable by both engines).
    pub created_at: i64,
    pub title_key: String,
    pub text_key: String,
}

impl Document {
    /// The document as a search hit, its title highlighted for `query_words`.
    pub fn hit(self, query_words: &[String]) -> crate::index::Hit {
        crate::index::Hit {
            highlighted: highlight(&self.title, query_words),
            id: self.id,
            title: self.title,
            kind: self.kind,
            category: self.category,
            game: self.game,
            city: self.city,
            district: self.district,
            price: self.price,
            has_images: self.has_images,
            premium: self.premium,
            seller_plan: self.seller_plan,
            popularity: self.popularity,
            created_at: self.created_at,
        }
    }
}

/// What the events say about a listing besides its state: when it was created, how often it
/// sold.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub created_at: DateTime<Utc>,
    pub sales: i64,
}

/// The document of `listing`, or `None` when buyers must not find it: anything but active
/// (draft, pending, rejected, reserved, sold, archived, blocked) or deleted.
pub fn to_document(listing: &Listing, facts: Facts) -> Option<Document> {
    if listing.deleted || listing.status != Status::Active {
        return None;
    }
    let attribute = |name: &str| listing.attributes.get(name).filter(|v| !v.trim().is_empty()).cloned();
    let game = match &listing.details {
        Details::GameAccount { game, .. } => Some(game.clone()),
        _ => None,
    };
    let mut text = String::with_capacity(listing.description.len() + 64);
    text.push_str(&listing.description);
    for (name, value) in &listing.attributes {
        text.push(' ');
        text.push_str(name);
        text.push(' ');
        text.push_str(value);
    }
    for part in [&game, &Some(listing.category.clone())].into_iter().flatten() {
        text.push(' ');
        text.push_str(part);
    }
    Some(Document {
        id: listing.id,
        title: listing.title.clone(),
        description: listing.description.clone(),
        attributes: listing.attributes.clone(),
        kind: listing.details.kind().to_owned(),
        category: listing.category.clone(),
        game,
        city: attribute("city"),
        district: attribute("district"),
        price: listing.price.tiyin(),
        has_images: !listing.images.is_empty(),
        premium: listing.promoted.is_some(),
        seller_plan: serde_json::to_value(listing.seller_plan)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        seller_rating: None,
        popularity: facts.sales,
        created_at: facts.created_at.timestamp(),
        title_key: synonyms::expand(&key(&listing.title)),
        text_key: synonyms::expand(&key(&text)),
    })
}

/// `title` as HTML-safe text with the words a query matched wrapped in `<mark>`: a word
/// matches when its search key starts with a query word, or is within a typo of it, or names
/// the same thing (see `synonyms`). The same on both backends.
pub fn highlight(title: &str, query_words: &[String]) -> String {
    let mut out = String::with_capacity(title.len() + 16);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let k = key(word);
        let hit = !k.is_empty()
            && query_words.iter().any(|q| {
                let expanded = synonyms::expand(&k);
                k.split(' ').chain(expanded.split(' ')).any(|w| matches_word(w, q))
            });
        if hit {
            out.push_str("<mark>");
        }
        escape_into(word, out);
        if hit {
            out.push_str("</mark>");
        }
        word.clear();
    };
    for c in title.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Whether a document word matches a query word (both search keys): prefix, or a typo away
/// (one edit from 4 letters, two from 9).
pub fn matches_word(word: &str, query: &str) -> bool {
    if query.is_empty() || word.is_empty() {
        return false;
    }
    if word.starts_with(query) {
        return true;
    }
    let n = query.chars().count();
    let allowed = match n {
        0..=3 => 0,
        4..=8 => 1,
        _ => 2,
    };
    if allowed == 0 {
        return false;
    }
    // A typo in a prefix being typed: compare with the word's start of the same length too.
    let start: String = word.chars().take(n).collect();
    distance(word, query) <= allowed || distance(&start, query) <= allowed
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            previous = current;
        }
    }
    row[b.len()]
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bozor_domain::listing::{Promotion, PromotionTier};
    use bozor_domain::money::{Money, Plan};

    fn listing(status: Status) -> Listing {
        Listing {
            id: Uuid::nil(),
            seller_id: Uuid::nil(),
            seller_plan: Plan::Pro,
            details: Details::Classified { contact_phone: None },
            title: "Chevrolet Cobalt 2021".into(),
            description: "Oq rang, probeg 40 000 km".into(),
            category: "cars".into(),
            price: Money::from_tiyin(14_000_000_000).unwrap(),
            original_price: Money::from_tiyin(14_000_000_000).unwrap(),
            images: vec!["a.jpg".into()],
            attributes: [("city".to_owned(), "Toshkent".to_owned()), ("district".to_owned(), "Chilonzor".to_owned())]
                .into(),
            status,
            deleted: false,
            submitted_at: None,
            promoted: None,
            reservations: Default::default(),
            credentials: None,
        }
    }

    fn facts() -> Facts {
        Facts { created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(), sales: 3 }
    }

    #[test]
    fn an_active_listing_becomes_a_document_with_its_keys() {
        let mut l = listing(Status::Active);
        l.promoted = Some(Promotion { tier: PromotionTier::Top, until: DateTime::from_timestamp(1, 0).unwrap() });
        let d = to_document(&l, facts()).expect("active listings are indexed");
        assert_eq!(d.title_key, "chevrolet kobalt 2021 shevrole");
        assert!(d.text_key.contains("ok rang"), "{}", d.text_key);
        assert!(d.text_key.contains("toshkent") && d.text_key.contains("chilonzor"), "{}", d.text_key);
        assert_eq!((d.city.as_deref(), d.district.as_deref()), (Some("Toshkent"), Some("Chilonzor")));
        assert_eq!((d.kind.as_str(), d.seller_plan.as_str(), d.premium), ("classified", "pro", true));
        assert_eq!((d.price, d.popularity, d.created_at, d.has_images), (14_000_000_000, 3, 1_700_000_000, true));
    }

    #[test]
    fn only_active_listings_are_found() {
        for status in [
            Status::Draft,
            Status::Pending,
            Status::Rejected { reason: "x".into() },
            Status::Reserved { order_id: Uuid::nil() },
            Status::Sold,
            Status::Archived,
            Status::Blocked { reason: "x".into() },
        ] {
            assert!(to_document(&listing(status.clone()), facts()).is_none(), "{status:?}");
        }
        let mut deleted = listing(Status::Active);
        deleted.deleted = true;
        assert!(to_document(&deleted, facts()).is_none());
    }

    #[test]
    fn highlights_what_matched_in_any_script_and_escapes_the_rest() {
        let words = crate::synonyms::query_words("кобал");
        assert_eq!(highlight("Chevrolet Cobalt <2021>", &words), "Chevrolet <mark>Cobalt</mark> &lt;2021&gt;");
        let words = crate::synonyms::query_words("айфон 15");
        assert_eq!(highlight("iPhone 15 Pro", &words), "<mark>iPhone</mark> <mark>15</mark> Pro");
        let words = crate::synonyms::query_words("kobolt");
        assert_eq!(highlight("Кобальт белый", &words), "<mark>Кобальт</mark> белый");
        assert_eq!(highlight("Nexia", &[]), "Nexia");
    }

    #[test]
    fn typo_tolerance_grows_with_the_word() {
        assert!(matches_word("kobalt", "kob"));
        assert!(matches_word("kobalt", "kobolt"));
        assert!(!matches_word("kobalt", "kab"));
        assert!(matches_word("chilonzor", "chilanzor"));
        assert!(!matches_word("nexia", "gentra"));
    }
}
