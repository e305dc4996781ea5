// enlarged(): the model's picture (256x256, shown 720 or more across) looked up for a bigger surface.
// SHARP 1 (display/upscale "sharp") uses Catmull-Rom's cubic instead of one linear lookup, which blurs
// what it enlarges: bloom's detail figure through the show went from 47 % to 57 % of its photographs'
// (docs/texture.md). On llvmpipe (2 cores) the present pass costs 4-5 ms more at 1280x720, a quarter of
// that at the governor's render scale 0.5 (docs/performance.md).
// present.frag and composite.frag include this file (shaders.ShaderSet pastes it in: GLSL has no includes).
#ifndef SHARP
#define SHARP 0
#endif

// Five linear lookups instead of the cubic's 16 texels: each pair of middle texels of a row or column
// is one lookup placed between them by their weights, and the four corner taps (weights under 0.6 %)
// are left out, the rest renormalised. The cubic overshoots at edges, hence the clamp.
vec3 enlarged(sampler2D tex, vec2 uv) {
#if SHARP
    vec2 size = vec2(textureSize(tex, 0));
    vec2 pos = uv * size;
    vec2 c = floor(pos - 0.5) + 0.5;  // the texel centre at or before pos
    vec2 f = pos - c;
    vec2 w0 = f * (-0.5 + f * (1.0 - 0.5 * f));
    vec2 w1 = 1.0 + f * f * (-2.5 + 1.5 * f);
    vec2 w2 = f * (0.5 + f * (2.0 - 1.5 * f));
    vec2 w3 = f * f * (-0.5 + 0.5 * f);
    vec2 w12 = w1 + w2;
    vec2 t0 = (c - 1.0) / size;
    vec2 t12 = (c + w2 / w12) / size;
    vec2 t3 = (c + 2.0) / size;
    vec3 sum = texture(tex, vec2(t12.x, t0.y)).rgb * (w12.x * w0.y)
             + texture(tex, vec2(t0.x, t12.y)).rgb * (w0.x * w12.y)
             + texture(tex, t12).rgb * (w12.x * w12.y)
             + texture(tex, vec2(t3.x, t12.y)).rgb * (w3.x * w12.y)
             + texture(tex, vec2(t12.x, t3.y)).rgb * (w12.x * w3.y);
    float weight = w12.x * (w0.y + w12.y + w3.y) + w12.y * (w0.x + w3.x);
    return clamp(sum / weight, 0.0, 1.0);
#else
    return texture(tex, uv).rgb;
#endif
}
