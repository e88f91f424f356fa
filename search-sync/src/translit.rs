//! The bridge between scripts: every document and every query gets a search key in one Latin
//! form, so "кобалт", "kobalt" and "Cobalt" meet, and "ўзбекистон", "o‘zbekiston" and
//! "ozbekiston" too.
//!
//! Two pure steps:
//! - `latin`: Cyrillic to Latin. Uzbek Cyrillic by the official Uzbek Latin alphabet (ў o‘,
//!   қ q, ғ g‘, ҳ h, ш sh, ч ch, ж j, х x, ц ts, ё yo, ю yu, я ya, е ye at the start of a word or
//!   after a vowel); the Russian letters Uzbek lacks by their usual spellings (щ sh, ы i, э e,
//!   ь dropped, ъ ‘). Latin text passes through.
//! - `fold`: what spelling varies on, folded away: case; apostrophe-like marks (‘ ’ ʻ ʼ ` ´ ');
//!   Latin diacritics (é, ü, ş, ğ, ı, ...); and sounds written differently in Uzbek, Russian and
//!   English Latin: q→k, x and kh→h, zh and dj→j, ph→f, w→v, ts→s, and c→s before e, i and y,
//!   else k (ch stays).
//!
//! What it does not do, on purpose: names that differ between languages, not only scripts
//! ("Ташкент"/"Toshkent", "Чиланзар"/"Chilonzor", "айфон"/"iPhone") are for the search
//! engines' typo tolerance and synonyms, not for transliteration.

/// The search key of `text`: `fold(latin(text))`.
pub fn key(text: &str) -> String {
    fold(&latin(text))
}

/// `text` with every Cyrillic letter written in Latin (see the module's rules), lowercase.
pub fn latin(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut previous: Option<char> = None;
    for c in text.chars().flat_map(char::to_lowercase) {
        let word_start = previous.is_none_or(|p| !p.is_alphanumeric() && !is_apostrophe(p));
        let after_vowel = previous.is_some_and(|p| "аеёиоуўэюяыъь".contains(p));
        match c {
            'е' if word_start || after_vowel => out.push_str("ye"),
            _ => match cyrillic(c) {
                Some(l) => out.push_str(l),
                None => out.push(c),
            },
        }
        previous = Some(c);
    }
    out
}

/// The Latin spelling of one lowercase Cyrillic letter, `None` for anything else.
fn cyrillic(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' => "e",
        'ё' => "yo",
        'ж' => "j",
        'з' => "z",
        'и' => "i",
        'й' => "y",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "x",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "sh",
        'ъ' => "‘",
        'ы' => "i",
        'ь' => "",
        'э' => "e",
        'ю' => "yu",
        'я' => "ya",
        'ў' => "o‘",
        'қ' => "q",
        'ғ' => "g‘",
        'ҳ' => "h",
        _ => return None,
    })
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '‘' | '’' | 'ʻ' | 'ʼ' | '`' | '´')
}

/// A Latin letter without its diacritic (the ones Uzbek, Turkish and European names bring).
fn plain(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ā' => 'a',
        'é' | 'è' | 'ê' | 'ë' | 'ē' => 'e',
        'í' | 'ì' | 'î' | 'ï' | 'ı' | 'ī' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ō' => 'o',
        'ú' | 'ù' | 'û' | 'ü' | 'ū' => 'u',
        'ç' => 'c',
        'ş' | 'š' => 's',
        'ğ' => 'g',
        'ñ' => 'n',
        'ž' => 'z',
        'ý' | 'ÿ' => 'y',
        c => c,
    }
}

/// `text` folded as the module says: lowercase, no apostrophes or diacritics, and the sounds
/// spelled differently across Uzbek, Russian and English Latin written one way. Characters
/// that are neither letters nor digits become single spaces; the result is trimmed.
pub fn fold(text: &str) -> String {
    let chars: Vec<char> = text
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !is_apostrophe(*c))
        .map(plain)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        let (folded, used): (&str, usize) = match (c, next) {
            ('k', Some('h')) => ("h", 2),
            ('z', Some('h')) => ("j", 2),
            ('d', Some('j')) => ("j", 2),
            ('p', Some('h')) => ("f", 2),
            ('t', Some('s')) => ("s", 2),
            ('c', Some('h')) => ("ch", 2),
            ('c', Some('e' | 'i' | 'y')) => ("s", 1),
            ('c', _) => ("k", 1),
            ('q', _) => ("k", 1),
            ('x', _) => ("h", 1),
            ('w', _) => ("v", 1),
            (' ', _) if out.is_empty() || out.ends_with(' ') => ("", 1),
            _ => {
                out.push(c);
                i += 1;
                continue;
            }
        };
        out.push_str(folded);
        i += used;
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spellings a buyer or a seller really writes that must meet.
    #[test]
    fn spellings_across_scripts_meet() {
        let same = [
            ("кобалт", "cobalt"),
            ("Кобальт", "kobalt"),
            ("Chevrolet Cobalt", "chevrolet кобалт"),
            ("Дамас", "Damas"),
            ("Малибу", "Malibu"),
            ("ўзбекистон", "o‘zbekiston"),
            ("oʻzbekiston", "o'zbekiston"),
            ("ozbekiston", "Ўзбекистон"),
            ("Самарқанд", "Samarkand"),
            ("Самарканд", "samarqand"),
            ("Бухоро", "Buxoro"),
            ("Тошкент", "Toshkent"),
            ("Юнусобод", "Yunusobod"),
            ("квартира", "kvartira"),
            ("телефон", "telefon"),
            ("хонадон", "xonadon"),
            ("Хоразм", "Khorazm"),
            ("ғишт", "g‘isht"),
            ("ғишт", "gisht"),
            ("шаҳар", "shahar"),
            ("ҳовли", "hovli"),
            ("қовун", "qovun"),
            ("ёмғир", "yomg'ir"),
            ("цемент", "cement"),
            ("журнал", "zhurnal"),
            ("Ейск", "yeysk"),
            ("Фольксваген", "folksvagen"),
            ("Ноутбук", "noutbuk"),
            ("Мобайл Легендс", "mobayl legends"),
            ("Стандофф 2", "standoff 2"),
            ("PUBG   Mobile!", "pubg mobile"),
            ("Джордан", "Jordan"),
            ("Джиззах", "Jizzax"),
            ("Café", "cafe"),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b), "{a:?} and {b:?} must meet");
        }
    }

    #[test]
    fn uzbek_cyrillic_follows_the_official_latin_alphabet() {
        let pairs = [
            ("ўзбекистон", "o‘zbekiston"),
            ("ғалаба", "g‘alaba"),
            ("қишлоқ", "qishloq"),
            ("ҳаёт", "hayot"),
            ("чой", "choy"),
            ("шаҳар", "shahar"),
            ("юлдуз", "yulduz"),
            ("ярим", "yarim"),
            ("ёз", "yoz"),
            ("ер", "yer"),
            ("меъмор", "me‘mor"),
            ("келди", "keldi"),
            ("оила", "oila"),
            ("поезд", "poyezd"),
            ("цирк", "tsirk"),
        ];
        for (cyrillic, latin_form) in pairs {
            assert_eq!(latin(cyrillic), latin_form, "{cyrillic}");
        }
    }

    #[test]
    fn russian_letters_uzbek_lacks_have_their_usual_spelling() {
        assert_eq!(latin("щётка"), "shyotka");
        assert_eq!(latin("рыба"), "riba");
        assert_eq!(latin("это"), "eto");
        assert_eq!(latin("соль"), "sol");
        assert_eq!(latin("подъезд"), "pod‘yezd");
    }

    #[test]
    fn latin_text_and_digits_pass_through_unchanged_by_transliteration() {
        assert_eq!(latin("iPhone 15 Pro 256GB"), "iphone 15 pro 256gb");
        assert_eq!(key("iPhone 15 Pro 256GB"), "ifone 15 pro 256gb");
    }

    /// Different words stay different: folding must not merge what buyers tell apart.
    #[test]
    fn different_words_stay_apart() {
        let apart = [("kobalt", "gentra"), ("shar", "sar"), ("chay", "say"), ("damas", "nexia"), ("kvartira", "dom")];
        for (a, b) in apart {
            assert_ne!(key(a), key(b), "{a:?} and {b:?} must stay apart");
        }
    }

    /// Names that differ between languages, not only scripts, are left to the engines.
    #[test]
    fn names_that_differ_between_languages_are_not_bridged_here() {
        assert_ne!(key("Ташкент"), key("Toshkent"));
        assert_ne!(key("айфон"), key("iPhone"));
        assert_ne!(key("Фольксваген"), key("Volkswagen"), "f and v are different letters");
    }
}
