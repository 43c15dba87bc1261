//! Colour matching: a CRM colour to the nearest colour a provider offers, by CIEDE2000.

use palette::color_difference::Ciede2000;
use palette::{IntoColor, Lab, Srgb};

use crate::model::Rgb;

fn lab(c: Rgb) -> Lab {
    Srgb::new(c.r, c.g, c.b).into_format::<f32>().into_color()
}

/// The index of the palette colour nearest to `colour` by CIEDE2000; ties go to the first.
pub fn nearest_index(colour: Rgb, palette: &[Rgb]) -> Option<usize> {
    let target = lab(colour);
    let mut best: Option<(usize, f32)> = None;
    for (i, &candidate) in palette.iter().enumerate() {
        let d = target.difference(lab(candidate));
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

/// The palette colour nearest to `colour` by CIEDE2000; ties go to the first.
pub fn nearest(colour: Rgb, palette: &[Rgb]) -> Option<Rgb> {
    nearest_index(colour, palette).map(|i| palette[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Google Calendar's event colours as `colors.get` returns them (the classic palette),
    /// ids 1 to 11.
    const GOOGLE_CLASSIC: [&str; 11] = [
        "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
        "#5484ed", "#51b749", "#dc2127",
    ];

    fn google() -> Vec<Rgb> {
        GOOGLE_CLASSIC.iter().map(|c| c.parse().unwrap()).collect()
    }

    #[test]
    fn every_palette_colour_maps_to_itself() {
        let p = google();
        for (i, &c) in p.iter().enumerate() {
            assert_eq!(nearest_index(c, &p), Some(i));
        }
    }

    #[test]
    fn crm_colours_map_to_the_expected_google_colour() {
        let p = google();
        // pure red -> Tomato (11), a plain green -> Basil (10), a sky blue -> Blueberry (9)
        assert_eq!(nearest_index("#ff0000".parse().unwrap(), &p), Some(10));
        assert_eq!(nearest_index("#33aa33".parse().unwrap(), &p), Some(9));
        assert_eq!(nearest_index("#4a7be0".parse().unwrap(), &p), Some(8));
        assert_eq!(nearest_index("#dddddd".parse().unwrap(), &p), Some(7));
    }

    #[test]
    fn ties_go_to_the_first() {
        let c = Rgb::new(10, 10, 10);
        assert_eq!(nearest_index(c, &[c, c]), Some(0));
        assert_eq!(nearest_index(c, &[]), None);
    }
}
