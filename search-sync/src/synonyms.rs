//! Names that differ between languages, not only between scripts: "айфон" and "iPhone",
//! "Ташкент" and "Toshkent", "Чиланзар" and "Chilonzor". Transliteration cannot bridge them;
//! this table does, the same way on both backends.
//!
//! Every group has a canonical spelling, its first member's search key. A document's key gains
//! the canonical spelling of every group one of its words belongs to; a query's words are
//! replaced by their canonical spellings. So a query in any member's spelling meets a document
//! written in any other, without the query growing longer (both engines want every query word
//! to match).
//!
//! A word belongs to a group when its key equals a member's, or starts with it and adds at
//! most two letters (Russian and Uzbek endings: "Чиланзаре", "Toshkentda").

use crate::translit::key;

/// The groups, each a list of spellings (any script); the first is the canonical one.
pub const GROUPS: &[&[&str]] = &[
    // Goods
    &["iphone", "айфон", "айфоне", "ayfon", "ifon"],
    &["samsung", "самсунг", "samsung galaxy"],
    &["galaxy", "галакси", "галахи"],
    &["note", "ноут"],
    &["plus", "плюс"],
    &["telefon", "телефон", "phone", "smartfon", "смартфон", "smartphone"],
    &["noutbuk", "ноутбук", "laptop", "notebook"],
    &["televizor", "телевизор", "tv", "телик"],
    &["muzlatgich", "холодильник", "muzlatkich", "fridge", "refrigerator", "holodilnik"],
    &["kir yuvish mashinasi", "стиральная", "stiralka", "стиралка", "washer"],
    &["krossovka", "кроссовки", "кроссовка", "sneakers", "krossovki"],
    &["kurtka", "куртка", "jacket", "kurtkasi"],
    &["koylak", "ko‘ylak", "кўйлак", "платье", "dress"],
    // Cars
    &["mashina", "машина", "avtomobil", "автомобиль", "car", "avto", "авто"],
    &["kobalt", "кобальт", "cobalt"],
    &["neksiya", "нексия", "nexia", "neksia"],
    &["jentra", "джентра", "gentra", "жентра"],
    &["malibu", "малибу"],
    &["damas", "дамас"],
    &["lacetti", "лачетти", "ласетти", "lachetti"],
    &["shevrole", "шевроле", "chevrolet", "шевролет"],
    // Homes
    &["kvartira", "квартира", "xonadon", "хонадон", "flat", "apartment", "uy", "уй"],
    &["hovli", "ҳовли", "частный дом", "house"],
    // Places
    &["toshkent", "тошкент", "ташкент", "tashkent"],
    &["samarkand", "самарқанд", "самарканд", "samarqand"],
    &["buhoro", "бухоро", "бухара", "bukhara", "buxoro"],
    &["chilonzor", "чилонзор", "чиланзар", "chilanzar"],
    &["yunusobod", "юнусобод", "юнусабад", "yunusabad"],
    &["mirzo ulugbek", "мирзо улуғбек", "мирзо улугбек", "mirzo ulug‘bek"],
    &["yakkasaroy", "яккасарой", "яккасарай", "yakkasaray"],
    &["sergeli", "сергели"],
    &["olmazor", "олмазор", "алмазар", "almazar"],
    &["shayhontohur", "шайхонтоҳур", "шайхантахур", "shayxontohur"],
    // Games
    &["pubg", "пубг", "пабг", "pubg mobile"],
    &["standoff", "стандофф", "стандоф", "standoff 2", "so2"],
    &["mobile legends", "мобайл легендс", "мобile легенд", "mlbb", "млбб"],
    &["free fire", "фри фаер", "фри фаир", "freefire", "ff"],
    &["akkaunt", "аккаунт", "account", "акк", "akk"],
    // Services
    &["remont", "ремонт", "ta‘mirlash", "таъмирлаш", "repair"],
    &["santehnik", "сантехник", "plumber"],
    &["repetitor", "репетитор", "tutor"],
];

/// Extra letters a word may add to a member and still belong to its group.
const ENDING_MAX: usize = 2;

/// One member as a search key, with its group's canonical spelling.
struct Member {
    key: String,
    canonical: String,
}

/// The members' keys, computed once: single words, and phrases of several words.
fn members() -> &'static (Vec<Member>, Vec<Member>) {
    static MEMBERS: std::sync::OnceLock<(Vec<Member>, Vec<Member>)> = std::sync::OnceLock::new();
    MEMBERS.get_or_init(|| {
        let (mut words, mut phrases) = (Vec::new(), Vec::new());
        for group in GROUPS {
            let canonical = key(group[0]);
            for m in *group {
                let member = Member { key: key(m), canonical: canonical.clone() };
                match member.key.contains(' ') {
                    true => phrases.push(member),
                    false => words.push(member),
                }
            }
        }
        (words, phrases)
    })
}

/// The canonical spelling of the group `word` (a search key of one word) belongs to.
fn canonical_of(word: &str) -> Option<&'static str> {
    let len = word.chars().count();
    members()
        .0
        .iter()
        .find(|m| {
            word == m.key
                || (word.starts_with(&m.key) && m.key.chars().count() >= 4 && len - m.key.chars().count() <= ENDING_MAX)
        })
        .map(|m| m.canonical.as_str())
}

/// A document's key: `text_key` (already a search key) followed by the canonical spelling of
/// every group it names, each once.
pub fn expand(text_key: &str) -> String {
    let mut extra: Vec<&str> = Vec::new();
    for word in text_key.split(' ').filter(|w| !w.is_empty()) {
        if let Some(c) = canonical_of(word) {
            if c != word && !extra.contains(&c) {
                extra.push(c);
            }
        }
    }
    // Multi-word members ("mobile legends"), which a word-by-word look misses.
    let padded = format!(" {text_key} ");
    for m in &members().1 {
        if padded.contains(&format!(" {} ", m.key)) && !extra.contains(&m.canonical.as_str()) {
            extra.push(&m.canonical);
        }
    }
    let mut out = text_key.to_owned();
    for c in extra {
        out.push(' ');
        out.push_str(c);
    }
    out
}

/// A query's words as search keys, each replaced by its group's canonical spelling (a
/// multi-word member becomes its canonical words). Empty for a query with no letters or digits.
pub fn query_words(query: &str) -> Vec<String> {
    let mut padded = format!(" {} ", key(query));
    // Multi-word members first, so "mobile legends" stays one thing.
    for m in &members().1 {
        let phrase = format!(" {} ", m.key);
        if padded.contains(&phrase) {
            padded = padded.replace(&phrase, &format!(" {} ", m.canonical));
        }
    }
    let words: Vec<&str> = padded.split(' ').filter(|w| !w.is_empty()).collect();
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, w)| match i == last {
            // The last word may be a prefix still being typed ("avtom" on the way to
            // "avtomat"): it takes a group's spelling only when it is a member, no ending.
            true => members().0.iter().find(|m| m.key == *w).map_or(*w, |m| m.canonical.as_str()),
            false => canonical_of(w).unwrap_or(w),
        })
        // A canonical spelling of several words ("free fire") is several query words.
        .flat_map(|w| w.split(' '))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_differ_between_languages_meet() {
        // A query in one spelling and a document in another share the canonical word.
        let pairs = [
            ("айфон 15", "Apple iPhone 15 Pro 256GB"),
            ("kvartira Chilonzor", "Квартира в Чиланзаре, 3 комнаты"),
            ("ташкент", "Toshkent shahri"),
            ("Toshkent", "Квартира в Ташкенте"),
            ("нексия", "Chevrolet Nexia 3"),
            ("gentra", "Джентра 2019"),
            ("холодильник", "Muzlatgich Artel"),
            ("мобайл легендс", "Mobile Legends akkaunt"),
            ("pubg", "ПУБГ аккаунт"),
            ("телефон", "Smartfon Redmi"),
        ];
        for (query, title) in pairs {
            let doc = expand(&key(title));
            let doc_words: Vec<&str> = doc.split(' ').collect();
            for w in query_words(query) {
                assert!(doc_words.contains(&w.as_str()), "{query:?}: word {w:?} not in {doc:?} ({title:?})");
            }
        }
    }

    #[test]
    fn words_outside_every_group_pass_through() {
        assert_eq!(query_words("Кобальт 2020 oq"), vec!["kobalt", "2020", "ok"]);
        assert_eq!(expand("artel 2020"), "artel 2020");
        assert!(query_words("  ,,, ").is_empty());
    }

    #[test]
    fn endings_are_short_and_members_long_enough() {
        // "uy" (2 letters) must not swallow "uyqu"; "toshkentdagi" adds 4 letters: not a member.
        assert_eq!(query_words("uyqu"), vec!["uyku"]);
        assert_eq!(query_words("toshkentda uy"), vec!["toshkent", "kvartira"]);
        assert_eq!(query_words("toshkentdagi uy"), vec!["toshkentdagi", "kvartira"]);
        // The last word is being typed: no ending rule ("avtom" is not "avto").
        assert_eq!(query_words("gentra avtom"), vec!["jentra", "avtom"]);
        assert_eq!(query_words("avto"), vec!["mashina"]);
        // A canonical phrase is words of its own.
        assert_eq!(query_words("ff akkaunt"), vec!["free", "fire", "akkaunt"]);
    }
}
