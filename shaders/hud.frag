#version 330
// The heads-up display: a text overlay drawn on the CPU a few times a second, blended over the picture.
uniform sampler2D u_hud;
uniform vec2 u_origin;   // pixels from the top-left
uniform vec2 u_hud_size;
uniform vec2 u_screen;
out vec4 f_color;

void main() {
    vec2 px = vec2(gl_FragCoord.x, u_screen.y - gl_FragCoord.y) - u_origin;
    if (any(lessThan(px, vec2(0.0))) || any(greaterThanEqual(px, u_hud_size))) {
        discard;
    }
    f_color = texture(u_hud, px / u_hud_size);
}
